use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pushstream_core::csv::{self, CsvValue};
use pushstream_core::writer::{self, Recovered, WriterStats as CoreStats};
use pushstream_core::{SliceWriter as CoreWriter, SyncMode, SyncSettings as CoreSettings};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use crate::errors;
use crate::record::now_ns;

/// `storage.level.local.encoding.sync.*`: how rows of a slice reach the disk.
#[pyclass(frozen, module = "pushstream._core", eq)]
#[derive(Clone, PartialEq)]
pub struct SyncSettings {
    pub inner: CoreSettings,
}

#[pymethods]
impl SyncSettings {
    #[new]
    #[pyo3(signature = (mode="disk", wait=true, check_interval=0.005, count_trigger=10_000, bytes_trigger=1_048_576, interval_trigger=0.05))]
    fn new(
        mode: &str,
        wait: bool,
        check_interval: f64,
        count_trigger: u64,
        bytes_trigger: u64,
        interval_trigger: f64,
    ) -> PyResult<Self> {
        let mode = SyncMode::parse(mode).map_err(PyValueError::new_err)?;
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(PyValueError::new_err(format!("{name} must be a non-negative number of seconds")))
            }
        };
        if count_trigger == 0 || bytes_trigger == 0 {
            return Err(PyValueError::new_err("count_trigger and bytes_trigger must be positive"));
        }
        Ok(SyncSettings {
            inner: CoreSettings {
                mode,
                wait,
                check_interval: seconds("check_interval", check_interval)?,
                count_trigger,
                bytes_trigger,
                interval_trigger: seconds("interval_trigger", interval_trigger)?,
            },
        })
    }

    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode.as_str()
    }
    #[getter]
    fn wait(&self) -> bool {
        self.inner.wait
    }
    #[getter]
    fn check_interval(&self) -> f64 {
        self.inner.check_interval.as_secs_f64()
    }
    #[getter]
    fn count_trigger(&self) -> u64 {
        self.inner.count_trigger
    }
    #[getter]
    fn bytes_trigger(&self) -> u64 {
        self.inner.bytes_trigger
    }
    #[getter]
    fn interval_trigger(&self) -> f64 {
        self.inner.interval_trigger.as_secs_f64()
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "SyncSettings(mode={:?}, wait={}, check_interval={}, count_trigger={}, bytes_trigger={}, interval_trigger={})",
            s.mode.as_str(),
            if s.wait { "True" } else { "False" },
            s.check_interval.as_secs_f64(),
            s.count_trigger,
            s.bytes_trigger,
            s.interval_trigger.as_secs_f64()
        )
    }
}

/// Counters of a slice since it was opened (recovered rows included).
#[pyclass(frozen, module = "pushstream._core", get_all)]
pub struct WriterStats {
    rows: u64,
    bytes: u64,
    synced_rows: u64,
    synced_bytes: u64,
    syncs: u64,
    first_record_ns: Option<i64>,
    last_record_ns: Option<i64>,
}

impl From<CoreStats> for WriterStats {
    fn from(s: CoreStats) -> Self {
        WriterStats {
            rows: s.rows,
            bytes: s.bytes,
            synced_rows: s.synced_rows,
            synced_bytes: s.synced_bytes,
            syncs: s.syncs,
            first_record_ns: s.first_record_ns,
            last_record_ns: s.last_record_ns,
        }
    }
}

#[pymethods]
impl WriterStats {
    fn __repr__(&self) -> String {
        format!(
            "WriterStats(rows={}, bytes={}, synced_rows={}, synced_bytes={})",
            self.rows, self.bytes, self.synced_rows, self.synced_bytes
        )
    }
}

/// What reopening a slice found: whole rows kept, bytes of a torn row cut off.
#[pyclass(frozen, module = "pushstream._core", get_all)]
pub struct RecoveredSlice {
    rows: u64,
    bytes: u64,
    truncated: u64,
}

impl From<Recovered> for RecoveredSlice {
    fn from(r: Recovered) -> Self {
        RecoveredSlice { rows: r.rows, bytes: r.bytes, truncated: r.truncated }
    }
}

#[pymethods]
impl RecoveredSlice {
    fn __repr__(&self) -> String {
        format!("RecoveredSlice(rows={}, bytes={}, truncated={})", self.rows, self.bytes, self.truncated)
    }
}

/// An append-only slice file with eager group commit.
#[pyclass(frozen, module = "pushstream._core")]
pub struct SliceWriter {
    pub inner: Arc<CoreWriter>,
    recovered: Recovered,
}

#[pymethods]
impl SliceWriter {
    #[new]
    #[pyo3(signature = (path, settings=None))]
    fn new(py: Python<'_>, path: PathBuf, settings: Option<&Bound<'_, SyncSettings>>) -> PyResult<Self> {
        let settings = settings.map_or_else(CoreSettings::default, |s| s.get().inner.clone());
        let (writer, recovered) =
            py.detach(|| CoreWriter::open(&path, settings)).map_err(|e| errors::writer_error(py, &e))?;
        Ok(SliceWriter { inner: Arc::new(writer), recovered })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    #[getter]
    fn settings(&self) -> SyncSettings {
        SyncSettings { inner: self.inner.settings().clone() }
    }

    /// What was found in the file when it was opened.
    #[getter]
    fn recovered(&self) -> RecoveredSlice {
        self.recovered.into()
    }

    #[getter]
    fn stats(&self) -> WriterStats {
        self.inner.stats().into()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Encodes rows of Python values (str, int, float, bool, None) and appends
    /// them; waits for the sync when the settings say so (GIL released).
    #[pyo3(signature = (rows, record_time_ns=None))]
    fn write(&self, py: Python<'_>, rows: &Bound<'_, PyAny>, record_time_ns: Option<i64>) -> PyResult<u64> {
        let mut data = Vec::new();
        let mut count = 0u64;
        for row in rows.try_iter()? {
            let items: Vec<Bound<'_, PyAny>> = row?.try_iter()?.collect::<PyResult<_>>()?;
            let values: Vec<CsvValue<'_>> = items.iter().map(to_csv_value).collect::<PyResult<_>>()?;
            csv::write_row(&values, &mut data);
            count += 1;
        }
        self.write_encoded(py, data, count, record_time_ns)
    }

    /// Appends rows that are already Keboola CSV (whole rows only).
    #[pyo3(signature = (data, rows, record_time_ns=None))]
    fn write_csv(&self, py: Python<'_>, data: Vec<u8>, rows: u64, record_time_ns: Option<i64>) -> PyResult<u64> {
        let (complete, counted) = csv::complete_rows(&data);
        if complete != data.len() || counted != rows {
            return Err(PyValueError::new_err(format!(
                "data must be {rows} whole CSV rows, found {counted} rows and {} trailing bytes",
                data.len() - complete
            )));
        }
        self.write_encoded(py, data, rows, record_time_ns)
    }

    /// Waits until everything written so far is synced.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let writer = Arc::clone(&self.inner);
        py.detach(move || writer.flush()).map_err(|e| errors::writer_error(py, &e))
    }

    /// Syncs the rest and closes the file; returns the final counters.
    fn close(&self, py: Python<'_>) -> PyResult<WriterStats> {
        let writer = Arc::clone(&self.inner);
        py.detach(move || writer.close()).map(Into::into).map_err(|e| errors::writer_error(py, &e))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _exc_type: Py<PyAny>, _exc: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<()> {
        self.close(py).map(|_| ())
    }

    fn __repr__(&self) -> String {
        format!("SliceWriter({:?})", self.inner.path().display().to_string())
    }
}

impl SliceWriter {
    fn write_encoded(&self, py: Python<'_>, data: Vec<u8>, rows: u64, record_time_ns: Option<i64>) -> PyResult<u64> {
        let writer = Arc::clone(&self.inner);
        let at = record_time_ns.unwrap_or_else(now_ns);
        py.detach(move || writer.write(&data, rows, at)).map_err(|e| errors::writer_error(py, &e))?;
        Ok(rows)
    }
}

fn to_csv_value<'a>(item: &'a Bound<'_, PyAny>) -> PyResult<CsvValue<'a>> {
    if item.is_none() {
        Ok(CsvValue::Null)
    } else if let Ok(b) = item.cast::<PyBool>() {
        Ok(CsvValue::Bool(b.is_true()))
    } else if let Ok(i) = item.cast::<PyInt>() {
        i.extract::<i64>().map(CsvValue::Int).map_err(|_| PyValueError::new_err("integer does not fit into 64 bits"))
    } else if let Ok(f) = item.cast::<PyFloat>() {
        Ok(CsvValue::Float(f.value()))
    } else if let Ok(s) = item.cast::<PyString>() {
        Ok(CsvValue::Str(s.to_str()?))
    } else {
        Err(PyTypeError::new_err(format!(
            "cannot write a value of type {} to CSV, expected str, int, float, bool or None",
            item.get_type().name()?
        )))
    }
}

/// Cuts a torn trailing row off a slice file in place.
#[pyfunction]
pub fn recover_slice(py: Python<'_>, path: PathBuf) -> PyResult<RecoveredSlice> {
    py.detach(|| writer::recover_slice(&path)).map(Into::into).map_err(|e| errors::writer_error(py, &e))
}

/// Decodes Keboola CSV into rows of strings.
#[pyfunction]
pub fn parse_csv(py: Python<'_>, data: &[u8]) -> PyResult<Vec<Vec<String>>> {
    let data = data.to_vec();
    py.detach(move || csv::parse_rows(&data)).map_err(PyValueError::new_err)
}

/// Counters of every slice writer of this process since it started (see
/// `pushstream_core::writer::ProcessTotals`); the metrics read them at scrape time.
#[pyclass(frozen, module = "pushstream._core", get_all)]
pub struct WriterTotals {
    rows: u64,
    bytes: u64,
    rounds: u64,
    fsyncs: u64,
    fsync_seconds: f64,
    /// `(upper bound in seconds, count)` per bucket, not cumulative; the last
    /// bound is `inf`.
    fsync_buckets: Vec<(f64, u64)>,
}

#[pymethods]
impl WriterTotals {
    fn __repr__(&self) -> String {
        format!(
            "WriterTotals(rows={}, bytes={}, rounds={}, fsyncs={})",
            self.rows, self.bytes, self.rounds, self.fsyncs
        )
    }
}

/// The totals of every slice writer of this process so far.
#[pyfunction]
pub fn writer_totals() -> WriterTotals {
    let totals = writer::process_totals();
    let bounds = writer::FSYNC_BUCKETS.iter().copied().chain(std::iter::once(f64::INFINITY));
    WriterTotals {
        rows: totals.rows,
        bytes: totals.bytes,
        rounds: totals.rounds,
        fsyncs: totals.fsyncs,
        fsync_seconds: totals.fsync_seconds,
        fsync_buckets: bounds.zip(totals.fsync_buckets).collect(),
    }
}
