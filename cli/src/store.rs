//! The portal and device stores: `tessera-store` (SQLite, the embedded
//! default, or PostgreSQL for several portal servers; see its docs for the
//! host contract).

pub use tessera_store::*;
