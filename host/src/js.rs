//! The JavaScript codec of the records (feature `wasm`): `FromJs` reads a
//! record from a JavaScript value, `ToJs` writes one, both derived with
//! [`Js`] from the serde attributes the records carry (so the shape is the
//! one their TypeScript declarations describe).
//!
//! Rules, the same for every record:
//! - an object is a plain object (not an array, not `null`); a key holding
//!   `undefined` or `null` is absent; an absent key is `None` for an
//!   `Option`, the default where serde has one, else "missing field";
//! - a key the record does not have is refused ("unknown field"), except in
//!   stored rows (`js(open)`: the host may add its own, a database id);
//! - numbers are integers within the target type (at most 2^53 − 1 in
//!   size: no `BigInt`, no numeric strings); times are epoch milliseconds
//!   or a `Date`; bytes are a `Uint8Array` (a Node `Buffer` is one);
//! - no message quotes the value it refuses (it may be a secret): only its
//!   place (`settings.digits`) and what was expected.

use crate::Timestamp;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

pub use tessera_js_derive::Js;

/// Why a value was refused, and where (`.field`, `[index]`, outermost first).
/// (Boxed: a `Result<T, Bad>` stays the size of `T` plus a pointer, which
/// keeps every record's straight-line decoder short.)
#[derive(Debug)]
pub struct Bad(Box<Refusal>);

#[derive(Debug)]
struct Refusal {
    path: String,
    detail: String,
    /// The caller's own exception (a throwing getter or Proxy trap): it
    /// propagates as itself.
    thrown: Option<JsValue>,
}

impl Bad {
    /// A refusal of the value at hand.
    pub fn new(detail: impl Into<String>) -> Self {
        Bad(Box::new(Refusal { path: String::new(), detail: detail.into(), thrown: None }))
    }

    fn thrown(e: JsValue) -> Self {
        Bad(Box::new(Refusal { path: String::new(), detail: String::new(), thrown: Some(e) }))
    }

    /// The caller's own exception, thrown while reading its value: to be
    /// rethrown as it is.
    pub fn caller_exception(&self) -> Option<&JsValue> {
        self.0.thrown.as_ref()
    }

    /// The same refusal, one level down (`key` of an object).
    #[must_use]
    pub(crate) fn at(mut self, key: &str) -> Self {
        self.0.path.insert_str(0, key);
        self.0.path.insert(0, '.');
        self
    }

    fn at_index(mut self, i: usize) -> Self {
        self.0.path.insert_str(0, &format!("[{i}]"));
        self
    }

    /// Where, below the argument (`""`, `.settings.digits`, `[2].name`).
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// What was wrong.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }
}

/// A record (or value) read from JavaScript.
pub trait FromJs: Sized {
    /// `strict`: refuse unknown keys (off inside stored rows).
    fn from_js(v: &JsValue, strict: bool) -> Result<Self, Bad>;

    /// The value of an absent key (`None` for an `Option`), if it may be absent.
    fn absent() -> Option<Self> {
        None
    }
}

/// A record (or value) for JavaScript.
pub trait ToJs {
    /// Fails only for an integer beyond 2^53 − 1.
    fn to_js(&self) -> Result<JsValue, Bad>;
}

/// What `typeof` says of a value (its content could run code or be secret).
pub(crate) fn type_of(v: &JsValue) -> String {
    if v.is_null() {
        return "null".to_owned();
    }
    if Array::is_array(v) {
        return "an array".to_owned();
    }
    v.js_typeof().as_string().unwrap_or_default()
}

fn wrong(expected: &str, v: &JsValue) -> Bad {
    Bad::new(format!("must be {expected}, not {}", type_of(v)))
}

/// A plain object (not an array, not `null`).
pub(crate) fn object(v: &JsValue) -> Result<Object, Bad> {
    if !v.is_object() || Array::is_array(v) {
        return Err(wrong("an object", v));
    }
    Ok(v.clone().unchecked_into())
}

/// A string.
pub(crate) fn string(v: &JsValue) -> Result<String, Bad> {
    v.as_string().ok_or_else(|| wrong("a string", v))
}

/// The first key of `o` holding a value (not `undefined`, not `null`) that is not in `known`.
pub(crate) fn known(o: &Object, known: &[&str]) -> Result<(), Bad> {
    for key in Object::keys(o).iter() {
        let name = key.as_string().unwrap_or_default();
        if known.contains(&name.as_str()) {
            continue;
        }
        let value = Reflect::get(o, &key).map_err(Bad::thrown)?;
        if !value.is_undefined() && !value.is_null() {
            return Err(Bad::new(format!("unknown field `{name}`")));
        }
    }
    Ok(())
}

fn get(o: &Object, key: &str) -> Result<JsValue, Bad> {
    Reflect::get(o, &JsValue::from_str(key)).map_err(Bad::thrown)
}

/// The key's value; `None` when the key is absent (`undefined`, `null`).
pub(crate) fn field_opt<T: FromJs>(o: &Object, key: &str, strict: bool) -> Result<Option<T>, Bad> {
    let v = get(o, key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    T::from_js(&v, strict).map(Some).map_err(|e| e.at(key))
}

/// The key's value, [`FromJs::absent`] when it is absent, else "missing field".
pub(crate) fn field<T: FromJs>(o: &Object, key: &str, strict: bool) -> Result<T, Bad> {
    match field_opt(o, key, strict)? {
        Some(t) => Ok(t),
        None => T::absent().ok_or_else(|| Bad::new(format!("missing field `{key}`"))),
    }
}

/// Sets `o[key]`.
pub(crate) fn set<T: ToJs + ?Sized>(o: &Object, key: &str, v: &T) -> Result<(), Bad> {
    let v = v.to_js().map_err(|e| e.at(key))?;
    // Reflect.set on a fresh plain object cannot fail.
    let _ = Reflect::set(o, &JsValue::from_str(key), &v);
    Ok(())
}

/// Decodes a whole argument: [`FromJs`] with unknown keys refused.
pub fn from_value<T: FromJs>(v: &JsValue) -> Result<T, Bad> {
    T::from_js(v, true)
}

// ---- values ----

impl FromJs for String {
    fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
        string(v)
    }
}

impl ToJs for String {
    fn to_js(&self) -> Result<JsValue, Bad> {
        Ok(JsValue::from_str(self))
    }
}

impl ToJs for str {
    fn to_js(&self) -> Result<JsValue, Bad> {
        Ok(JsValue::from_str(self))
    }
}

impl FromJs for bool {
    fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
        v.as_bool().ok_or_else(|| wrong("a boolean", v))
    }
}

impl ToJs for bool {
    fn to_js(&self) -> Result<JsValue, Bad> {
        Ok(JsValue::from_bool(*self))
    }
}

/// JavaScript's largest exact integer, 2^53 − 1.
const MAX_SAFE: i64 = (1 << 53) - 1;

/// An integer from `min` to `max` (each within ±(2^53 − 1)).
fn integer(v: &JsValue, min: i64, max: i64) -> Result<i64, Bad> {
    let n = v.as_f64().ok_or_else(|| wrong("a number", v))?;
    // In range after the check, so the cast is exact. (No f64 formatting:
    // the message names the bounds, not the value.)
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    if n.is_finite() && n.fract() == 0.0 && n >= min as f64 && n <= max as f64 {
        return Ok(n as i64);
    }
    Err(Bad::new(if min == -MAX_SAFE && max == MAX_SAFE {
        "must be an integer of at most 2^53 - 1".to_owned()
    } else {
        format!("must be an integer from {min} to {max}")
    }))
}

fn number(n: i64) -> Result<JsValue, Bad> {
    if (-MAX_SAFE..=MAX_SAFE).contains(&n) {
        #[allow(clippy::cast_precision_loss)]
        Ok(JsValue::from_f64(n as f64))
    } else {
        Err(Bad::new("a number beyond 2^53 - 1"))
    }
}

macro_rules! ints {
    ($($t:ty => $min:expr, $max:expr;)*) => {$(
        impl FromJs for $t {
            fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_lossless)]
                integer(v, $min as i64, $max as i64).map(|n| n as $t)
            }
        }
        impl ToJs for $t {
            fn to_js(&self) -> Result<JsValue, Bad> {
                #[allow(clippy::cast_possible_wrap, clippy::cast_lossless)]
                number(*self as i64)
            }
        }
    )*};
}

ints! {
    i32 => i32::MIN, i32::MAX;
    u32 => 0, u32::MAX;
    i64 => -MAX_SAFE, MAX_SAFE;
    u64 => 0, MAX_SAFE;
}

impl FromJs for Timestamp {
    /// Epoch milliseconds or a `Date`.
    fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
        let ms = match v.dyn_ref::<js_sys::Date>() {
            Some(d) => d.get_time(),
            None => v.as_f64().ok_or_else(|| wrong("a time (epoch milliseconds or a Date)", v))?,
        };
        Timestamp::from_millis_f64(ms).ok_or_else(|| Bad::new("a time must be a finite number"))
    }
}

impl ToJs for Timestamp {
    fn to_js(&self) -> Result<JsValue, Bad> {
        Ok(JsValue::from_f64(self.millis_f64()))
    }
}

impl<T: FromJs> FromJs for Option<T> {
    fn from_js(v: &JsValue, strict: bool) -> Result<Self, Bad> {
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        T::from_js(v, strict).map(Some)
    }

    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<T: ToJs> ToJs for Option<T> {
    fn to_js(&self) -> Result<JsValue, Bad> {
        match self {
            Some(t) => t.to_js(),
            None => Ok(JsValue::UNDEFINED),
        }
    }
}

impl<T: FromJs> FromJs for Vec<T> {
    fn from_js(v: &JsValue, strict: bool) -> Result<Self, Bad> {
        let a = v.dyn_ref::<Array>().filter(|_| Array::is_array(v)).ok_or_else(|| wrong("an array", v))?;
        a.iter().enumerate().map(|(i, item)| T::from_js(&item, strict).map_err(|e| e.at_index(i))).collect()
    }
}

impl<T: ToJs> ToJs for Vec<T> {
    fn to_js(&self) -> Result<JsValue, Bad> {
        self[..].to_js()
    }
}

impl<T: ToJs> ToJs for [T] {
    fn to_js(&self) -> Result<JsValue, Bad> {
        let a = Array::new();
        for (i, t) in self.iter().enumerate() {
            a.push(&t.to_js().map_err(|e| e.at_index(i))?);
        }
        Ok(a.into())
    }
}

impl<T: ToJs + ?Sized> ToJs for &T {
    fn to_js(&self) -> Result<JsValue, Bad> {
        (**self).to_js()
    }
}

// ---- bytes (`#[serde(with = "serde_bytes")]`) ----

/// A `serde_bytes` field: a `Uint8Array` in JavaScript (a plain
/// `Vec<u8>` field would be an array of numbers, as in serde).
#[derive(Debug)]
pub struct Bytes<T>(pub T);

/// What a `serde_bytes` field may hold.
pub trait ByteField: Sized {
    /// From a `Uint8Array`.
    fn from_bytes(v: &[u8]) -> Self;
    /// The value of an absent key, if it may be absent.
    fn absent() -> Option<Self>;
    /// The bytes, if any.
    fn bytes(&self) -> Option<&[u8]>;
}

impl ByteField for Vec<u8> {
    fn from_bytes(v: &[u8]) -> Self {
        v.to_vec()
    }
    fn absent() -> Option<Self> {
        None
    }
    fn bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ByteField for Option<Vec<u8>> {
    fn from_bytes(v: &[u8]) -> Self {
        Some(v.to_vec())
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
    fn bytes(&self) -> Option<&[u8]> {
        self.as_deref()
    }
}

/// A `Uint8Array` (a Node `Buffer` is one), nothing else.
pub fn bytes(v: &JsValue) -> Result<Vec<u8>, Bad> {
    v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec).ok_or_else(|| wrong("a Uint8Array", v))
}

impl<T: ByteField> FromJs for Bytes<T> {
    fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
        Ok(Bytes(T::from_bytes(&bytes(v)?)))
    }

    fn absent() -> Option<Self> {
        T::absent().map(Bytes)
    }
}

impl<T: ByteField> ToJs for Bytes<&T> {
    fn to_js(&self) -> Result<JsValue, Bad> {
        Ok(match self.0.bytes() {
            Some(b) => Uint8Array::from(b).into(),
            None => JsValue::UNDEFINED,
        })
    }
}
