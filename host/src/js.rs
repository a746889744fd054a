//! The JavaScript codec of the records (feature `wasm`): `FromJs` reads a
//! record from a JavaScript value, `ToJs` writes one, both derived with
//! [`Js`] from the serde attributes the records carry (so the shape is the
//! one their TypeScript declarations describe).
//!
//! Rules, the same for every record:
//! - a record is an object read from its own properties (inherited ones,
//!   such as a polluted `Object.prototype`'s, are not read), not an array,
//!   a typed array, a `Map` or a `Set`;
//! - a key holding `undefined` is absent; an absent key is `None` for an
//!   `Option`, the default where serde has one, else "missing field"; a
//!   `null` is `None` for an `Option` and refused anywhere else (it never
//!   asks for a default);
//! - a key the record does not have is refused ("unknown field"), except in
//!   stored rows (`js(open)`: the host may add its own, a database id);
//! - numbers are integers within the target type (at most 2^53 − 1 in
//!   size: no `BigInt`, no numeric strings); times are epoch milliseconds
//!   or a `Date`; bytes are a `Uint8Array` (a Node `Buffer` is one), copied
//!   through its internal slots;
//! - no message quotes the value it refuses (it may be a secret): only its
//!   place (`settings.digits`) and what was expected;
//! - an exception from the caller's value (a getter, a Proxy trap) is
//!   caught and handed back to be rethrown as it is.

use crate::Timestamp;
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

// Every reflection on a caller's value catches: a throwing Proxy trap or
// getter, a revoked Proxy, or an object that only pretends to be a `Date`
// or a `Uint8Array` must come back as an error. An uncaught exception would
// unwind through the wasm frames and leave the called object borrowed for
// good (it could never be freed, nor its keys zeroized).
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = Object, js_name = keys)]
    fn own_keys(o: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Object, js_name = hasOwn)]
    fn has_own(o: &JsValue, key: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Array, js_name = isArray)]
    fn is_array(v: &JsValue) -> Result<bool, JsValue>;
    /// A `Date` (or something that says it is one).
    #[wasm_bindgen(js_name = Date)]
    type AnyDate;
    #[wasm_bindgen(catch, method, js_name = getTime)]
    fn get_time(this: &AnyDate) -> Result<f64, JsValue>;
    /// A fresh `Uint8Array`.
    #[wasm_bindgen(js_name = Uint8Array)]
    type FreshBytes;
    /// A copy of a typed array's bytes (internal slots only: neither a
    /// subclass's `length` getter nor a Proxy is consulted).
    #[wasm_bindgen(catch, constructor, js_class = "Uint8Array")]
    fn copy_of(v: &JsValue) -> Result<FreshBytes, JsValue>;
}

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

/// What a value is, in a message's words (never its content: that could
/// run code or be secret): `typeof`, or for objects `"an array"`, `"a typed
/// array"`, `"a Map"`, `"a Set"`, and `"object"` only for one that can hold
/// a record. Errs with the caller's exception (a revoked Proxy).
fn kind(v: &JsValue) -> Result<String, JsValue> {
    if v.is_null() {
        return Ok("null".to_owned());
    }
    let t = v.js_typeof().as_string().unwrap_or_default();
    if t != "object" {
        return Ok(t);
    }
    let what = if is_array(v)? {
        "an array"
    } else if ArrayBuffer::is_view(v) {
        "a typed array"
    } else if v.is_instance_of::<js_sys::Map>() {
        "a Map"
    } else if v.is_instance_of::<js_sys::Set>() {
        "a Set"
    } else {
        "object"
    };
    Ok(what.to_owned())
}

/// [`kind`] for a message (a value that throws on inspection is an object).
fn type_of(v: &JsValue) -> String {
    kind(v).unwrap_or_else(|_| "object".to_owned())
}

fn wrong(expected: &str, v: &JsValue) -> Bad {
    Bad::new(format!("must be {expected}, not {}", type_of(v)))
}

/// An object that holds a record in its own properties: not `null`, an
/// array, a typed array (its indices would be its keys) or a `Map`/`Set`
/// (whose entries are no properties: it would read as all defaults).
pub(crate) fn object(v: &JsValue) -> Result<Object, Bad> {
    if kind(v).map_err(Bad::thrown)? != "object" {
        return Err(wrong("an object", v));
    }
    Ok(v.clone().unchecked_into())
}

/// A string.
pub(crate) fn string(v: &JsValue) -> Result<String, Bad> {
    v.as_string().ok_or_else(|| wrong("a string", v))
}

/// The longest key name an "unknown field" message repeats.
const MAX_KEY_SHOWN: usize = 40;

/// The first own key of `o` not in `known` that holds a value (not `undefined`).
pub(crate) fn known(o: &Object, known: &[&str]) -> Result<(), Bad> {
    for key in own_keys(o).map_err(Bad::thrown)?.iter() {
        let name = key.as_string().unwrap_or_default();
        if known.contains(&name.as_str()) {
            continue;
        }
        let value = Reflect::get(o, &key).map_err(Bad::thrown)?;
        if !value.is_undefined() {
            // The caller's key name, shortened and without control characters.
            let mut shown: String =
                name.chars().take(MAX_KEY_SHOWN).map(|c| if c.is_control() { '?' } else { c }).collect();
            if name.chars().nth(MAX_KEY_SHOWN).is_some() {
                shown.push('…');
            }
            return Err(Bad::new(format!("unknown field `{shown}`")));
        }
    }
    Ok(())
}

/// An own property's value (inherited ones, such as a polluted
/// `Object.prototype`'s, are not the record's: `undefined`).
fn get(o: &Object, key: &str) -> Result<JsValue, Bad> {
    if !has_own(o, key).map_err(Bad::thrown)? {
        return Ok(JsValue::UNDEFINED);
    }
    Reflect::get(o, &JsValue::from_str(key)).map_err(Bad::thrown)
}

/// The key's value; `None` when the key is absent (`undefined`). A `null`
/// is a value: `None` for an `Option`, refused for anything else (it is no
/// way to ask for a default).
pub(crate) fn field_opt<T: FromJs>(o: &Object, key: &str, strict: bool) -> Result<Option<T>, Bad> {
    let v = get(o, key)?;
    if v.is_undefined() {
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
                number(i64::from(*self))
            }
        }
    )*};
}

// The integer types of the records (Kotlin and Java have no unsigned ones).
ints! {
    i32 => i32::MIN, i32::MAX;
    i64 => -MAX_SAFE, MAX_SAFE;
}

impl FromJs for Timestamp {
    /// Epoch milliseconds or a `Date`.
    fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
        let ms = match v.dyn_ref::<js_sys::Date>() {
            // Only a real Date has a time (`Object.create(Date.prototype)` throws).
            Some(d) => d
                .unchecked_ref::<AnyDate>()
                .get_time()
                .map_err(|_| wrong("a time (epoch milliseconds or a Date)", v))?,
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
        if !is_array(v).map_err(Bad::thrown)? {
            return Err(wrong("an array", v));
        }
        let len = Reflect::get(v, &JsValue::from_str("length")).map_err(Bad::thrown)?.as_f64().unwrap_or(0.0);
        let mut out = Vec::new();
        let mut i = 0u32;
        while f64::from(i) < len {
            let item = Reflect::get_u32(v, i).map_err(Bad::thrown)?;
            out.push(T::from_js(&item, strict).map_err(|e| e.at_index(i as usize))?);
            i += 1;
        }
        Ok(out)
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
    /// The value of a `null` (`None` for an `Option`), if it may be null.
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
    if !v.is_instance_of::<Uint8Array>() || !ArrayBuffer::is_view(v) {
        return Err(wrong("a Uint8Array", v));
    }
    // A detached buffer makes the copy throw: the caller's own doing.
    Ok(FreshBytes::copy_of(v).map_err(Bad::thrown)?.unchecked_into::<Uint8Array>().to_vec())
}

impl<T: ByteField> FromJs for Bytes<T> {
    fn from_js(v: &JsValue, _: bool) -> Result<Self, Bad> {
        if v.is_null() {
            if let Some(none) = T::absent() {
                return Ok(Bytes(none));
            }
        }
        Ok(Bytes(T::from_bytes(&bytes(v)?)))
    }

    // As in serde, a `with` field is never implicitly optional: absent is
    // "missing field" unless the field or its record has a default.
}

impl<T: ByteField> ToJs for Bytes<&T> {
    fn to_js(&self) -> Result<JsValue, Bad> {
        Ok(match self.0.bytes() {
            Some(b) => Uint8Array::from(b).into(),
            None => JsValue::UNDEFINED,
        })
    }
}
