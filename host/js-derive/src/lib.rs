//! `#[derive(Js)]`: tessera-host's JavaScript codec (`FromJs`, `ToJs` in
//! `tessera_host::js`) from the serde attributes a record already carries,
//! so the JavaScript shape stays the one its `Serialize`/`Deserialize` and
//! TypeScript declarations (tsify) describe.
//!
//! Why not serde-wasm-bindgen: a self-describing serde format instantiates
//! every record's map visitor, field-name matcher and `deserialize_any`
//! paths; for the npm package that was ~90 KB of a ~300 KB gzipped module.
//! This derive writes one straight-line function per record instead.
//!
//! Understood serde attributes, each only where it stands here (anything
//! else, or in another place, is a compile error, so a new attribute cannot
//! silently change the JavaScript shape):
//! - struct: `rename_all` (`camelCase`, `lowercase`), `default` (bare),
//!   `deny_unknown_fields` (every record is strict, see `js(open)`);
//! - enum: `rename_all`, `rename_all_fields` (`camelCase`), `tag = "…"`
//!   (internally tagged: unit and named-field variants),
//!   `deny_unknown_fields`;
//! - field: `default`, `default = "path"`, `with = "serde_bytes"`, `rename`;
//! - variant: `rename`.
//!
//! `#[js(open)]` on a struct or enum: a stored row, which may carry the
//! host's own properties (a database id); its keys (and those of everything
//! in it) are not checked.
//!
//! The generated code names `crate::js`, `::js_sys` and `::wasm_bindgen`:
//! the derive serves tessera-host's own records (not generic ones).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::{parse_macro_input, Attribute, Data, DeriveInput, Error, Fields, LitStr};

#[proc_macro_derive(Js, attributes(js))]
pub fn derive_js(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Serde {
    rename_all: Option<String>,
    rename_all_fields: Option<String>,
    tag: Option<String>,
    default: Option<Option<syn::ExprPath>>,
    bytes: bool,
    rename: Option<String>,
}

/// Where an attribute stands: each place understands its own few.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Struct,
    Enum,
    Field,
    Variant,
}

fn serde_attrs(attrs: &[Attribute], at: At) -> syn::Result<Serde> {
    let mut s = Serde::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|m| {
            let text =
                |m: &syn::meta::ParseNestedMeta| -> syn::Result<String> { Ok(m.value()?.parse::<LitStr>()?.value()) };
            let name = m.path.get_ident().map(ToString::to_string).unwrap_or_default();
            match (name.as_str(), at) {
                ("rename_all", At::Struct | At::Enum) => s.rename_all = Some(text(&m)?),
                ("rename_all_fields", At::Enum) => s.rename_all_fields = Some(text(&m)?),
                ("tag", At::Enum) => s.tag = Some(text(&m)?),
                ("rename", At::Field | At::Variant) => s.rename = Some(text(&m)?),
                ("deny_unknown_fields", At::Struct | At::Enum) => {}
                ("default", At::Struct) if !m.input.peek(syn::Token![=]) => s.default = Some(None),
                ("default", At::Field) => {
                    s.default =
                        Some(if m.input.peek(syn::Token![=]) { Some(syn::parse_str(&text(&m)?)?) } else { None });
                }
                ("with", At::Field) => {
                    let with = text(&m)?;
                    if with != "serde_bytes" {
                        return Err(m.error(format!("tessera-js-derive: `with = \"{with}\"` is not understood")));
                    }
                    s.bytes = true;
                }
                _ => {
                    return Err(m.error(
                        "tessera-js-derive: this serde attribute is not understood here (teach the derive first)",
                    ))
                }
            }
            Ok(())
        })?;
    }
    Ok(s)
}

/// `#[js(open)]` on a container; no `js` attribute anywhere else.
fn js_open(attrs: &[Attribute], container: bool) -> syn::Result<bool> {
    let mut open = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("js")) {
        attr.parse_nested_meta(|m| {
            if m.path.is_ident("open") && container {
                open = true;
                Ok(())
            } else {
                Err(m.error("tessera-js-derive: only `js(open)`, on a struct or enum, is known"))
            }
        })?;
    }
    Ok(open)
}

/// serde's renaming (`RenameRule::apply_to_field` / `apply_to_variant`)
/// of a field (`snake_case`) or variant (`PascalCase`).
fn rename(name: &str, rule: Option<&str>, variant: bool, span: Span) -> syn::Result<String> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    let lower_first = |s: &str| {
        let mut c = s.chars();
        c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
    };
    Ok(match (rule, variant) {
        (None, _) | (Some("lowercase"), false) => name.to_owned(),
        (Some("lowercase"), true) => name.to_ascii_lowercase(),
        (Some("camelCase"), true) => lower_first(name),
        (Some("camelCase"), false) => {
            let mut pascal = String::new();
            let mut up = true;
            for ch in name.chars() {
                if ch == '_' {
                    up = true;
                } else if up {
                    pascal.push(ch.to_ascii_uppercase());
                    up = false;
                } else {
                    pascal.push(ch);
                }
            }
            lower_first(&pascal)
        }
        (Some(other), _) => {
            return Err(Error::new(span, format!("tessera-js-derive: rename rule `{other}` is not understood")))
        }
    })
}

struct Field {
    ident: syn::Ident,
    ty: syn::Type,
    key: String,
    default: Option<Option<syn::ExprPath>>,
    bytes: bool,
}

fn fields(fields: &Fields, rule: Option<&str>) -> syn::Result<Vec<Field>> {
    let Fields::Named(named) = fields else {
        return Err(Error::new_spanned(fields, "tessera-js-derive: only named fields"));
    };
    named
        .named
        .iter()
        .map(|f| {
            let ident = f.ident.clone().expect("named");
            let s = serde_attrs(&f.attrs, At::Field)?;
            js_open(&f.attrs, false)?;
            let key = match s.rename {
                Some(r) => r,
                None => rename(&ident.to_string(), rule, false, ident.span())?,
            };
            Ok(Field { ident, ty: f.ty.clone(), key, default: s.default, bytes: s.bytes })
        })
        .collect()
}

/// `Name { a: …, b: … }` read from the object `__o` (container default in `__d`).
fn decode_fields(path: &Tokens, fields: &[Field], container_default: bool) -> Tokens {
    let inits = fields.iter().map(|f| {
        let (ident, ty, key) = (&f.ident, &f.ty, &f.key);
        let (read_ty, unwrap, inner) = if f.bytes {
            (quote!(crate::js::Bytes<#ty>), quote!(.map(|b| b.0)), quote!(.0))
        } else {
            (quote!(#ty), quote!(), quote!())
        };
        let value = match (&f.default, container_default) {
            (Some(Some(func)), _) => {
                quote!(crate::js::field_opt::<#read_ty>(&__o, #key, __strict)? #unwrap .unwrap_or_else(#func))
            }
            (Some(None), _) => {
                quote!(crate::js::field_opt::<#read_ty>(&__o, #key, __strict)? #unwrap .unwrap_or_default())
            }
            (None, true) => quote!(match crate::js::field_opt::<#read_ty>(&__o, #key, __strict)? #unwrap {
                ::core::option::Option::Some(v) => v,
                ::core::option::Option::None => __d.#ident,
            }),
            (None, false) => quote!(crate::js::field::<#read_ty>(&__o, #key, __strict)? #inner),
        };
        quote!(#ident: #value)
    });
    quote!(#path { #(#inits),* })
}

/// Sets every field of the bindings `ident…` on the object `__o`.
fn encode_fields(fields: &[Field]) -> Tokens {
    let sets = fields.iter().map(|f| {
        let (ident, key) = (&f.ident, &f.key);
        if f.bytes {
            quote!(crate::js::set(&__o, #key, &crate::js::Bytes(#ident))?;)
        } else {
            quote!(crate::js::set(&__o, #key, #ident)?;)
        }
    });
    quote!(#(#sets)*)
}

fn keys(tag: Option<&str>, fields: &[Field]) -> Tokens {
    let keys = tag.into_iter().map(str::to_owned).chain(fields.iter().map(|f| f.key.clone()));
    quote!(&[#(#keys),*])
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(&input.generics, "tessera-js-derive: records are not generic"));
    }
    let at = if matches!(input.data, Data::Enum(_)) { At::Enum } else { At::Struct };
    let s = serde_attrs(&input.attrs, at)?;
    let open = js_open(&input.attrs, true)?;
    let strict = if open { quote!(false) } else { quote!(__strict) };
    let (decode, encode) = match &input.data {
        Data::Struct(data) => {
            let fields = fields(&data.fields, s.rename_all.as_deref())?;
            let container_default = matches!(s.default, Some(None));
            let default = if container_default {
                quote!(let __d = <Self as ::core::default::Default>::default();)
            } else {
                quote!()
            };
            let build = decode_fields(&quote!(Self), &fields, container_default);
            let keys = keys(None, &fields);
            let idents = fields.iter().map(|f| &f.ident);
            let sets = encode_fields(&fields);
            (
                quote! {
                    let __o = crate::js::object(__v)?;
                    let __strict = #strict;
                    if __strict { crate::js::known(&__o, #keys)?; }
                    #default
                    ::core::result::Result::Ok(#build)
                },
                quote! {
                    let Self { #(#idents),* } = self;
                    let __o = ::js_sys::Object::new();
                    #sets
                    ::core::result::Result::Ok(__o.into())
                },
            )
        }
        Data::Enum(data) => {
            let mut arms_de = Vec::new();
            let mut arms_en = Vec::new();
            let mut names = Vec::new();
            for v in &data.variants {
                let vs = serde_attrs(&v.attrs, At::Variant)?;
                js_open(&v.attrs, false)?;
                let ident = &v.ident;
                let vname = match vs.rename {
                    Some(r) => r,
                    None => rename(&ident.to_string(), s.rename_all.as_deref(), true, ident.span())?,
                };
                names.push(format!("`{vname}`"));
                match (&s.tag, &v.fields) {
                    (None, Fields::Unit) => {
                        arms_de.push(quote!(#vname => ::core::result::Result::Ok(Self::#ident),));
                        arms_en.push(quote!(Self::#ident => ::wasm_bindgen::JsValue::from_str(#vname),));
                    }
                    (Some(tag), Fields::Unit) => {
                        let keys = keys(Some(tag), &[]);
                        arms_de.push(quote!(#vname => {
                            if __strict { crate::js::known(&__o, #keys)?; }
                            ::core::result::Result::Ok(Self::#ident)
                        }));
                        arms_en.push(quote!(Self::#ident => {
                            let __o = ::js_sys::Object::new();
                            crate::js::set(&__o, #tag, #vname)?;
                            __o.into()
                        }));
                    }
                    (Some(tag), Fields::Named(_)) => {
                        let fields = fields(&v.fields, s.rename_all_fields.as_deref())?;
                        let keys = keys(Some(tag), &fields);
                        let build = decode_fields(&quote!(Self::#ident), &fields, false);
                        let idents: Vec<_> = fields.iter().map(|f| &f.ident).collect();
                        let sets = encode_fields(&fields);
                        arms_de.push(quote!(#vname => {
                            if __strict { crate::js::known(&__o, #keys)?; }
                            ::core::result::Result::Ok(#build)
                        }));
                        arms_en.push(quote!(Self::#ident { #(#idents),* } => {
                            let __o = ::js_sys::Object::new();
                            crate::js::set(&__o, #tag, #vname)?;
                            #sets
                            __o.into()
                        }));
                    }
                    _ => {
                        return Err(Error::new_spanned(
                            v,
                            "tessera-js-derive: enums are unit-only or internally tagged (`tag = …`) with named fields",
                        ))
                    }
                }
            }
            let expected = format!("one of {}", names.join(", "));
            match &s.tag {
                None => (
                    quote! {
                        match crate::js::string(__v)?.as_str() {
                            #(#arms_de)*
                            _ => ::core::result::Result::Err(crate::js::Bad::new(concat!("must be ", #expected))),
                        }
                    },
                    quote!(::core::result::Result::Ok(match self { #(#arms_en)* })),
                ),
                Some(tag) => (
                    quote! {
                        let __o = crate::js::object(__v)?;
                        let __strict = #strict;
                        match crate::js::field::<::std::string::String>(&__o, #tag, false)?.as_str() {
                            #(#arms_de)*
                            _ => ::core::result::Result::Err(crate::js::Bad::new(concat!("must be ", #expected)).at(#tag)),
                        }
                    },
                    quote!(::core::result::Result::Ok(match self { #(#arms_en)* })),
                ),
            }
        }
        Data::Union(_) => return Err(Error::new_spanned(input, "tessera-js-derive: no unions")),
    };
    Ok(quote! {
        impl crate::js::FromJs for #name {
            #[allow(unused_variables)]
            fn from_js(__v: &::wasm_bindgen::JsValue, __strict: bool) -> ::core::result::Result<Self, crate::js::Bad> {
                #decode
            }
        }
        impl crate::js::ToJs for #name {
            fn to_js(&self) -> ::core::result::Result<::wasm_bindgen::JsValue, crate::js::Bad> {
                #encode
            }
        }
    })
}
