//! Firmware of the offline authenticator (flow 3) on a Cortex-M4F without
//! an operating system: `tessera_core::activation::Token` scans the QR text
//! the camera left in a buffer and shows the digits on the display.
//!
//! - Start-up: `Reset` zeroes `.bss`, copies `.data`, enables the FPU
//!   and calls [`main`]. No external crates (no `cortex-m-rt`): the vector
//!   table and the linker script (`link.x`) are here.
//! - Memory: a fixed arena is the global allocator, sealed once start-up
//!   is done; every allocation after that is refused (null: the default
//!   allocation error handler panics, and the panic handler stops the
//!   device). The scan path of `Token` does not allocate
//!   (`core/tests/token_no_alloc.rs` checks it).
//! - I/O: the camera driver, the display driver and the flash controller
//!   are not written here; they meet the firmware in the [`Shared`]
//!   buffers below, which the firmware only touches with volatile reads
//!   and writes (so the optimiser keeps the whole scan path: activation
//!   QR codes, the binding, challenge decoding).

#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::hint::black_box;
use core::panic::PanicInfo;
use core::ptr::{self, addr_of, addr_of_mut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tessera_core::activation::{Screen, ShownApproval, Token, TOKEN_STATE_LEN};
use tessera_core::{Error, ErrorCode};

/// Longest QR text the token reads (Base45 characters; as the core's
/// `MAX_CHALLENGE_QR_TEXT`).
const MAX_QR_TEXT: usize = 1024;
/// Display: lines of text, and the code on its own.
const LINES: usize = 8;
const LINE_LEN: usize = 72;

/// Serial number and factory secret the maker writes (a fixed test
/// device: serial `TS00012345`, secret `[7; 32]`).
static SERIAL: &str = "TS00012345";
static FACTORY_SECRET: [u8; 32] = [7; 32];

/// The protected flash page holding the token's state (erased: `0xFF`,
/// which `Token::from_bytes` refuses, so the device starts from its
/// factory record).
static STATE_FLASH: [u8; TOKEN_STATE_LEN] = [0xFF; TOKEN_STATE_LEN];

// ---------------------------------------------------------------------------
// Buffers shared with the drivers.

/// Memory another party (camera DMA, display, flash controller) also reads
/// or writes: only ever accessed through volatile reads and writes.
#[repr(transparent)]
struct Shared<T>(UnsafeCell<T>);

// SAFETY: one core, no interrupts touching these from Rust; every access
// is a volatile read or write of plain integers.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    const fn new(v: T) -> Self {
        Shared(UnsafeCell::new(v))
    }
}

impl<const N: usize> Shared<[u8; N]> {
    fn read(&self, at: usize) -> u8 {
        assert!(at < N);
        // SAFETY: in bounds (checked above); volatile read of a byte.
        unsafe { ptr::read_volatile(self.0.get().cast::<u8>().add(at)) }
    }

    /// Writes `bytes` at `at` (cut at the end of the buffer).
    fn write(&self, at: usize, bytes: &[u8]) {
        let p = self.0.get().cast::<u8>();
        for (i, &b) in bytes.iter().enumerate().take(N.saturating_sub(at)) {
            // SAFETY: at + i < N (the `take` above); volatile write of a byte.
            unsafe { ptr::write_volatile(p.add(at + i), b) }
        }
    }
}

impl Shared<u32> {
    fn get(&self) -> u32 {
        // SAFETY: volatile read of an aligned u32.
        unsafe { ptr::read_volatile(self.0.get()) }
    }

    fn set(&self, v: u32) {
        // SAFETY: volatile write of an aligned u32.
        unsafe { ptr::write_volatile(self.0.get(), v) }
    }
}

/// The QR text the camera decoded, and its length (0: nothing to scan;
/// the camera writes the text, then the length; the firmware clears it).
static QR_TEXT: Shared<[u8; MAX_QR_TEXT]> = Shared::new([0; MAX_QR_TEXT]);
static QR_LEN: Shared<u32> = Shared::new(0);

/// What the display shows: what the screen is (1 device code, 2 binding
/// code, 3 challenge, 4 error), lines of text and the code.
static SCREEN: Shared<u32> = Shared::new(0);
static DISPLAY: Shared<[u8; LINES * LINE_LEN]> = Shared::new([0; LINES * LINE_LEN]);
static DISPLAY_LENS: Shared<[u8; LINES]> = Shared::new([0; LINES]);
static CODE: Shared<[u8; 10]> = Shared::new([0; 10]);
static CODE_LEN: Shared<u32> = Shared::new(0);

/// The flash controller's write buffer for the state page, and its
/// request flag (1: program `STATE_OUT` into the state page).
static STATE_OUT: Shared<[u8; TOKEN_STATE_LEN]> = Shared::new([0; TOKEN_STATE_LEN]);
static STATE_WRITE: Shared<u32> = Shared::new(0);

// ---------------------------------------------------------------------------
// The allocator: a fixed arena, sealed after start-up.

/// Bytes of the start-up arena (the core allocates nothing at start-up
/// either; this is the whole heap the device will ever have).
const ARENA_LEN: usize = 256;

struct StartupArena {
    memory: UnsafeCell<[u8; ARENA_LEN]>,
    used: AtomicUsize,
    sealed: AtomicBool,
}

// SAFETY: `used` hands out disjoint ranges of `memory` (compare-and-swap).
unsafe impl Sync for StartupArena {}

impl StartupArena {
    /// Refuse every allocation from now on.
    fn seal(&self) {
        self.sealed.store(true, Ordering::SeqCst);
    }
}

// SAFETY: returns null or a block of `layout.size()` bytes aligned to
// `layout.align()` inside `memory`, never handed out twice.
unsafe impl GlobalAlloc for StartupArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.sealed.load(Ordering::SeqCst) {
            return ptr::null_mut();
        }
        let base = self.memory.get().cast::<u8>();
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            let start = (base as usize + used).next_multiple_of(layout.align()) - base as usize;
            let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= ARENA_LEN) else {
                return ptr::null_mut();
            };
            match self.used.compare_exchange(used, end, Ordering::SeqCst, Ordering::SeqCst) {
                // SAFETY: start + size <= ARENA_LEN.
                Ok(_) => return unsafe { base.add(start) },
                Err(now) => used = now,
            }
        }
    }

    /// An arena never frees.
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ARENA: StartupArena =
    StartupArena { memory: UnsafeCell::new([0; ARENA_LEN]), used: AtomicUsize::new(0), sealed: AtomicBool::new(false) };

// ---------------------------------------------------------------------------
// The application.

fn main() -> ! {
    let mut token = match Token::from_bytes(black_box(&STATE_FLASH[..])) {
        Ok(t) => t,
        // First start (erased page) or a corrupt state: the factory record.
        Err(_) => match Token::from_factory(black_box(SERIAL), black_box(&FACTORY_SECRET)) {
            Ok(t) => t,
            Err(_) => halt(),
        },
    };
    ARENA.seal();

    let mut text = [0u8; MAX_QR_TEXT];
    loop {
        let len = QR_LEN.get() as usize;
        if len == 0 {
            core::hint::spin_loop();
            continue;
        }
        let scanned = if len > MAX_QR_TEXT {
            Err(Error::new(ErrorCode::MalformedMessage, "the QR code is too long"))
        } else {
            for (i, b) in text[..len].iter_mut().enumerate() {
                *b = QR_TEXT.read(i);
            }
            match core::str::from_utf8(&text[..len]) {
                Ok(qr) => token.scan(qr),
                Err(_) => Err(Error::new(ErrorCode::MalformedMessage, "not a QR code of this device")),
            }
        };
        QR_LEN.set(0);
        match scanned {
            Ok(screen) => {
                if matches!(screen, Screen::BindingCode { .. }) {
                    // The device took a binding: keep it before showing the code.
                    STATE_OUT.write(0, &token.to_bytes()[..]);
                    STATE_WRITE.set(1);
                }
                show(&screen);
            }
            Err(e) => {
                clear();
                SCREEN.set(4);
                line(0, e.code().as_str());
            }
        }
    }
}

fn show(screen: &Screen) {
    clear();
    let code = match screen {
        Screen::DeviceCode { portal_name, code } => {
            SCREEN.set(1);
            line(0, "Device code");
            line(1, portal_name.as_str());
            code
        }
        Screen::BindingCode { portal_name, user_id, code, replaced } => {
            SCREEN.set(2);
            line(0, if *replaced { "Binding code (replaces the old one)" } else { "Binding code" });
            line(1, portal_name.as_str());
            line(2, user_id.as_str());
            code
        }
        Screen::Challenge { portal_name, user_id, approval, code } => {
            SCREEN.set(3);
            line(1, portal_name.as_str());
            line(2, user_id.as_str());
            match approval {
                ShownApproval::Login => line(0, "Log in"),
                ShownApproval::Transaction { amount, currency, payee, .. } => {
                    line(0, "Payment");
                    let mut buf = [0u8; 24];
                    let n = format_amount(amount.minor(), amount.decimals(), &mut buf);
                    buf[n] = b' ';
                    line_bytes(3, &buf[..=n]);
                    line_at(3, n + 1, currency.as_str());
                    line(4, payee.as_str());
                    for (i, t) in approval.text_lines().iter().enumerate() {
                        line(5 + i, t.as_str());
                    }
                }
                ShownApproval::LinkDevice { device_name, device_id } => {
                    line(0, "New device");
                    line(3, device_name.as_str());
                    line(4, device_id.as_str());
                }
            }
            code
        }
    };
    CODE.write(0, code.as_str().as_bytes());
    CODE_LEN.set(code.as_str().len() as u32);
}

/// `minor` with `decimals` digits after the point (`12550`, 2: `125.50`),
/// into `out`; its length.
fn format_amount(mut minor: u64, decimals: u8, out: &mut [u8; 24]) -> usize {
    let mut digits = [0u8; 24];
    let mut n = 0;
    while (minor > 0 || n <= usize::from(decimals)) && n < digits.len() {
        digits[n] = b'0' + (minor % 10) as u8;
        minor /= 10;
        n += 1;
    }
    let mut len = 0;
    for i in (0..n).rev() {
        if len == out.len() - 1 {
            break;
        }
        out[len] = digits[i];
        len += 1;
        if i == usize::from(decimals) && decimals > 0 && len < out.len() - 1 {
            out[len] = b'.';
            len += 1;
        }
    }
    len
}

fn clear() {
    DISPLAY_LENS.write(0, &[0; LINES]);
    CODE_LEN.set(0);
}

fn line(i: usize, s: &str) {
    line_at(i, 0, s);
}

fn line_bytes(i: usize, b: &[u8]) {
    if i < LINES {
        let n = b.len().min(LINE_LEN);
        DISPLAY.write(i * LINE_LEN, &b[..n]);
        DISPLAY_LENS.write(i, &[n as u8]);
    }
}

fn line_at(i: usize, at: usize, s: &str) {
    if i < LINES && at < LINE_LEN {
        let n = s.len().min(LINE_LEN - at);
        DISPLAY.write(i * LINE_LEN + at, &s.as_bytes()[..n]);
        DISPLAY_LENS.write(i, &[(at + n) as u8]);
    }
}

fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    // A refused allocation ends here too. The watchdog restarts the device.
    halt()
}

// ---------------------------------------------------------------------------
// Start-up and the vector table.

/// The reset handler: `.bss` zeroed, `.data` copied from flash, the FPU
/// on (the target uses hardware floating point), then [`main`].
///
/// # Safety
///
/// Only the hardware calls it, once, at reset.
#[no_mangle]
pub unsafe extern "C" fn Reset() -> ! {
    extern "C" {
        static mut _sbss: u32;
        static mut _ebss: u32;
        static mut _sdata: u32;
        static mut _edata: u32;
        static _sidata: u32;
    }
    /// Coprocessor access control register (CP10 and CP11: the FPU).
    const CPACR: *mut u32 = 0xE000_ED88 as *mut u32;
    // SAFETY: the linker script defines these symbols as word-aligned
    // bounds of .bss, .data and .data's load image; nothing has run yet
    // that could read them.
    unsafe {
        let mut p = addr_of_mut!(_sbss);
        let end = addr_of_mut!(_ebss);
        while p < end {
            ptr::write_volatile(p, 0);
            p = p.add(1);
        }
        let mut d = addr_of_mut!(_sdata);
        let end = addr_of_mut!(_edata);
        let mut s = addr_of!(_sidata);
        while d < end {
            ptr::write_volatile(d, ptr::read_volatile(s));
            d = d.add(1);
            s = s.add(1);
        }
        ptr::write_volatile(CPACR, ptr::read_volatile(CPACR) | (0b1111 << 20));
        core::arch::asm!("dsb", "isb", options(nostack, preserves_flags));
    }
    main()
}

/// Every exception but reset: stop (the watchdog restarts the device).
extern "C" fn default_handler() -> ! {
    halt()
}

type Vector = Option<extern "C" fn() -> !>;

/// The reset vector (after the initial stack pointer, which `link.x` puts first).
#[link_section = ".vector_table.reset_vector"]
#[no_mangle]
pub static RESET_VECTOR: unsafe extern "C" fn() -> ! = Reset;

/// NMI, HardFault, MemManage, BusFault, UsageFault, 4 reserved, SVCall,
/// DebugMonitor, reserved, PendSV, SysTick.
#[link_section = ".vector_table.exceptions"]
#[no_mangle]
pub static EXCEPTIONS: [Vector; 14] = {
    let h: Vector = Some(default_handler);
    [h, h, h, h, h, None, None, None, None, h, h, None, h, h]
};
