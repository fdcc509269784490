//! Values crossing the engine boundary: the parsed body into Jsonnet (lazily),
//! and a template's result out of it as compact JSON.

use std::fmt;
use std::ops::ControlFlow;
use std::ptr::NonNull;

use jrsonnet_evaluator::error::{ErrorKind, Result};
use jrsonnet_evaluator::ordering::{FieldIndex, SuperDepth};
use jrsonnet_evaluator::val::{ArrayLike, StrValue};
use jrsonnet_evaluator::{
    EnumFields, EnumFieldsHandler, FieldVisibility, GetFor, HasFieldIncludeHidden, IStr, ObjValueBuilder, ObjectCore,
    SupThis, Thunk, Val, Visibility,
};
use jrsonnet_gcmodule::Acyclic;
use sonic_rs::{JsonContainerTrait, JsonType, JsonValueTrait};

use crate::json::{self, NumberValue};

use super::{globals, MAX_OUTPUT_BYTES, MAX_OUTPUT_DEPTH};

/// A node of the bound record's parsed body. Arrays and objects are converted
/// element by element when the template reads them, so `std.length(Body("items"))`
/// converts nothing and `Body().user.name` converts one string.
#[derive(Acyclic)]
struct Node {
    node: NonNull<sonic_rs::Value>,
    generation: u64,
}

impl Node {
    fn new(value: &sonic_rs::Value) -> Option<Node> {
        Some(Node { node: NonNull::from(value), generation: globals::current_generation()? })
    }

    /// The body node, while the record it belongs to is still bound.
    fn get(&self) -> Result<&sonic_rs::Value> {
        if globals::current_generation() != Some(self.generation) {
            return Err(ErrorKind::RuntimeError("a body value was used after its record was evaluated".into()).into());
        }
        // SAFETY: the generation matches, so the record whose parsed body
        // contains this node is still bound, i.e. alive and not mutated.
        Ok(unsafe { self.node.as_ref() })
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyNode")
    }
}

/// Converts a body value into a Jsonnet value (containers lazily).
pub(super) fn from_json(value: &sonic_rs::Value) -> Val {
    match value.get_type() {
        JsonType::Null => Val::Null,
        JsonType::Boolean => Val::Bool(value.is_true()),
        JsonType::Number => number(value),
        JsonType::String => Val::string(value.as_str().unwrap_or_default()),
        JsonType::Array | JsonType::Object => match Node::new(value) {
            Some(node) if value.is_array() => Val::arr(LazyArray(node)),
            Some(node) => {
                let mut object = ObjValueBuilder::new();
                object.extend_with_core(LazyObject(node));
                Val::Obj(object.build())
            }
            None => Val::Null,
        },
    }
}

/// Jsonnet numbers are doubles, as in the reference implementation.
fn number(value: &sonic_rs::Value) -> Val {
    let f = match value.as_raw_number() {
        Some(raw) => match json::number_value(raw.as_str()) {
            NumberValue::Int(i) => i as f64,
            NumberValue::UInt(u) => u as f64,
            NumberValue::Float(f) => f,
        },
        None => value.as_f64().unwrap_or(0.0),
    };
    // Jsonnet has no infinity: literals beyond the double range (`1e400`) are
    // clamped to the largest double.
    Val::try_num(if f.is_finite() { f } else { f.signum() * f64::MAX }).unwrap_or(Val::Null)
}

#[derive(Debug, Acyclic)]
struct LazyArray(Node);

impl ArrayLike for LazyArray {
    fn len(&self) -> u32 {
        self.0.get().ok().and_then(|v| v.as_array()).map_or(0, |a| u32::try_from(a.len()).unwrap_or(u32::MAX))
    }

    fn get(&self, index: u32) -> Result<Option<Val>> {
        let array = self.0.get()?.as_array();
        Ok(array.and_then(|a| a.get(index as usize)).map(from_json))
    }

    fn get_lazy(&self, index: u32) -> Option<Thunk<Val>> {
        ArrayLike::get(self, index).ok().flatten().map(Thunk::evaluated)
    }
}

#[derive(Debug, Acyclic)]
struct LazyObject(Node);

impl LazyObject {
    fn object(&self) -> Option<&sonic_rs::Object> {
        self.0.get().ok().and_then(|v| v.as_object())
    }

    fn member(&self, key: &str) -> Option<&sonic_rs::Value> {
        // A duplicated key resolves to its last occurrence, as in `path` columns.
        self.object()?.iter().filter(|(k, _)| *k == key).last().map(|(_, v)| v)
    }
}

impl ObjectCore for LazyObject {
    fn enum_fields_core(&self, super_depth: &mut SuperDepth, handler: &mut EnumFieldsHandler<'_>) -> bool {
        let Some(object) = self.object() else {
            return true;
        };
        let keys: Vec<&str> = object.iter().map(|(k, _)| k).collect();
        for (i, key) in keys.iter().enumerate() {
            if keys[i + 1..].contains(key) {
                continue;
            }
            let visible = EnumFields::Normal(Visibility::Normal);
            if handler(*super_depth, FieldIndex::default(), (*key).into(), visible) == ControlFlow::Break(()) {
                return false;
            }
        }
        true
    }

    fn has_field_include_hidden_core(&self, name: IStr) -> HasFieldIncludeHidden {
        if self.member(&name).is_some() {
            HasFieldIncludeHidden::Exists
        } else {
            HasFieldIncludeHidden::NotFound
        }
    }

    fn get_for_core(&self, key: IStr, _sup_this: SupThis, omit_only: bool) -> Result<GetFor> {
        if omit_only {
            return Ok(GetFor::NotFound);
        }
        Ok(match self.member(&key) {
            Some(value) => GetFor::Final(from_json(value)),
            None => GetFor::NotFound,
        })
    }

    fn field_visibility_core(&self, field: IStr) -> FieldVisibility {
        match self.member(&field) {
            Some(_) => FieldVisibility::Found(Visibility::Normal),
            None => FieldVisibility::NotFound,
        }
    }

    fn run_assertions_core(&self, _sup_this: SupThis) -> Result<()> {
        Ok(())
    }
}

/// Appends the template's result as compact JSON (a string result without
/// quotes when `raw_string`). Object fields are sorted and hidden ones left
/// out, as Jsonnet manifests them.
pub(super) fn write_result(value: &Val, raw_string: bool, out: &mut Vec<u8>) -> Result<()> {
    let limit = out.len() + MAX_OUTPUT_BYTES;
    match value {
        Val::Str(s) if raw_string => write_raw_str(s, out, limit),
        _ => write(value, out, 0, limit),
    }
}

fn output_too_large() -> jrsonnet_evaluator::Error {
    globals::over_limit(format!("the result exceeds {MAX_OUTPUT_BYTES} bytes"))
}

fn write(value: &Val, out: &mut Vec<u8>, depth: usize, limit: usize) -> Result<()> {
    if out.len() > limit {
        return Err(output_too_large());
    }
    match value {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Val::Num(n) => write_number(n.get(), out),
        Val::Str(s) => {
            if out.len() + s.len() > limit {
                return Err(output_too_large());
            }
            match s {
                StrValue::Flat(flat) => json::write_str(flat, out),
                tree => json::write_str(&tree.clone().into_flat(), out),
            }
        }
        Val::Arr(items) => {
            if depth >= MAX_OUTPUT_DEPTH {
                return Err(too_deep());
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(&item?, out, depth + 1, limit)?;
            }
            out.push(b']');
        }
        Val::Obj(object) => {
            if depth >= MAX_OUTPUT_DEPTH {
                return Err(too_deep());
            }
            object.run_assertions()?;
            out.push(b'{');
            for (i, (key, item)) in object.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_str(&key, out);
                out.push(b':');
                write(&item?, out, depth + 1, limit)?;
            }
            out.push(b'}');
        }
        Val::Func(_) => {
            return Err(globals::over_limit("the result contains a function, which has no JSON form".into()))
        }
    }
    Ok(())
}

fn too_deep() -> jrsonnet_evaluator::Error {
    globals::over_limit(format!("the result is nested more than {MAX_OUTPUT_DEPTH} levels deep"))
}

fn write_raw_str(s: &StrValue, out: &mut Vec<u8>, limit: usize) -> Result<()> {
    if out.len() + s.len() > limit {
        return Err(output_too_large());
    }
    s.chunks(&mut |chunk: &IStr| out.extend_from_slice(chunk.as_bytes()));
    Ok(())
}

/// Integral numbers are written with all their digits (`1e20` is
/// `100000000000000000000`), as the C++ and Go implementations do; other
/// numbers in the shortest form that reads back as the same double (`0.1`,
/// where they write `0.10000000000000001`).
pub(super) fn write_number(f: f64, out: &mut Vec<u8>) {
    if f.fract() == 0.0 && f.is_finite() {
        if f.abs() < 1e18 {
            out.extend_from_slice(itoa::Buffer::new().format(f as i64).as_bytes());
        } else {
            out.extend_from_slice(format!("{f:.0}").as_bytes());
        }
    } else {
        json::write_f64(f, out);
    }
}
