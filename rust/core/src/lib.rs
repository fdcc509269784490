//! pushstream core: everything on the hot path of a data stream, in pure Rust.
//!
//! - [`mapping`]: sink mappings compiled once from column definitions, turning
//!   records into Keboola CSV rows;
//! - [`typed`]: the `dataType` of typed columns, value conversion and the
//!   canonical text of each type;
//! - [`path`], [`json`], [`body`], [`record`]: the pieces a mapping reads from;
//! - [`csv`]: Keboola's CSV encoding and recovery scanning;
//! - [`writer`]: durable append-only slices with eager group commit;
//! - [`slice_index`]: the receive-time index of a slice, and the merge of the
//!   parts that several nodes wrote of one slice;
//! - [`request`], [`fanout`]: one request (one record, or an NDJSON / CSV
//!   batch) into all sinks of a source;
//! - [`otlp`]: OpenTelemetry (OTLP/HTTP) requests into flat records for the same path.
//!
//! The Python binding (`rust/python`) is a thin layer over these types.

pub mod body;
pub mod csv;
pub mod error;
pub mod fanout;
pub mod json;
pub mod limits;
pub mod mapping;
pub mod otlp;
pub mod path;
pub mod record;
pub mod request;
pub mod slice_index;
pub mod template;
pub mod typed;
pub mod writer;

pub use error::{ConfigError, MappingError, MappingErrorKind, WriterError};
pub use mapping::{ColumnDef, Mapping, COLUMN_TYPES};
pub use record::{Record, RecordContext, RecordMeta, RecordRef};
pub use typed::{DataType, DATA_TYPES};
pub use writer::{SliceWriter, SyncMode, SyncSettings};
