//! `colsnap publish`: a snapshot as immutable content-addressed objects, a
//! manifest and a mutable `NAME.latest.json` pointer (SPEC.md section 15),
//! ready for a static file server or a CDN.

use crate::common::{self, lib, usage};
use std::path::PathBuf;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "\
Examples:
  colsnap publish issues.colsnap site/
  colsnap publish issues.colsnap site/ --events events.ndjson --json
  colsnap query site/issues.latest.json --sort -updated_at --limit 50
  colsnap query https://cdn.example/issues.latest.json --limit 50 --stats
  colsnap publish issues.colsnap s3://bucket/site


DIR receives objects/HEX (never rewritten, unless what is under the name
is not those bytes, damaged or cut short: it is replaced), manifests/HEX.json and
NAME.latest.json (replaced atomically). Publishing a newer snapshot into the
same DIR writes only the objects that do not exist yet. DIR may be an
s3://bucket/prefix URL (credentials, region and endpoint from the AWS_*
environment variables); the pointer is uploaded last.";

/// Arguments of `colsnap publish`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Snapshot file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Publish root (created when missing), or `s3://bucket/prefix`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Pointer name: DIR/NAME.latest.json (default: FILE's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Smallest object: consecutive sections are grouped up to this size
    /// (`16K`, `1M`).
    #[arg(long, value_name = "SIZE", default_value = "16K", value_parser = common::parse_size)]
    pub min_object: usize,
    /// An event log (NDJSON) recorded after the snapshot, published as a
    /// segment the manifest lists (repeatable, in `seq` order).
    #[arg(long, value_name = "LOG")]
    pub events: Vec<PathBuf>,
    /// Key field of the rows the --events logs name (they are checked to
    /// apply over the snapshot before anything is written); default `id`.
    #[arg(long, value_name = "FIELD")]
    pub key: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Run `publish`.
pub fn run(args: Args) -> anyhow::Result<()> {
    common::input_file(&args.file, false)?;
    for e in &args.events {
        common::input_file(e, false)?;
    }
    let dest = args.dir.display().to_string();
    let to_s3 = dest.starts_with("s3://");
    if !to_s3 {
        // DIR, or the nearest of its parents that exists, is a directory.
        if let Some(p) = args.dir.ancestors().find(|p| p.exists())
            && !p.is_dir()
        {
            return Err(usage(format!("{}: not a directory", p.display())));
        }
    }
    let fname = args.file.display().to_string();
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("snapshot")
            .to_string(),
    };
    if name.is_empty()
        || name.contains(['/', '\\'])
        || name.starts_with('.')
        || name.chars().any(char::is_control)
    {
        return Err(usage(format!(
            "--name {name:?}: give a plain file name (no `/`, `\\`, leading `.` or control character)"
        )));
    }
    if args.events.is_empty() && args.key.is_some() {
        return Err(usage(
            "--key names the key field of the --events logs: give --events",
        ));
    }
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| colsnap::events::DEFAULT_KEY_FIELD.to_string());
    if !args.events.is_empty() {
        let snap = common::open_snapshot(&args.file)?;
        common::check_key_field(&snap, &key, &fname)?;
    }
    let opts = colsnap::publish::PublishOptions {
        name,
        min_object: args.min_object as u64,
        events: args.events.clone(),
        key,
    };
    // Everything is checked before anything is written (the snapshot
    // verifies; the --events logs are logs, in seq order, applying over it
    // in turn); an error in a log names the log.
    let r =
        colsnap::publish::publish_to_location(&args.file, &dest, &opts).map_err(|e| match e {
            // A failure of the destination names the object it was writing.
            colsnap::Error::Remote { ref url, .. } => lib(&url.clone(), e),
            // A destination that cannot be written names itself.
            colsnap::Error::Invalid(m) if m.starts_with(&dest) => usage(m),
            e => lib(&fname, e),
        })?;
    let dir = args.dir.display().to_string();
    let at = |p: &str| format!("{}/{p}", dir.trim_end_matches('/'));
    if args.json {
        let v = serde_json::json!({
            "manifest": at(&r.manifest),
            "pointer": at(&r.pointer),
            "snapshot": r.snapshot,
            "objects": r.objects,
            "objects_written": r.objects_written,
            "bytes_written": r.bytes_written,
            "bytes_reused": r.bytes_reused,
            "snapshot_bytes": r.snapshot_bytes,
        });
        return common::print(&format!("{v}\n"));
    }
    common::print(&format!(
        "{fname}: published to {dir}\n  pointer   {}\n  manifest  {}\n  objects   {} ({} written, {} reused)\n  bytes     {} written, {} reused, snapshot {}\n",
        at(&r.pointer),
        at(&r.manifest),
        common::thousands(r.objects as u64),
        common::thousands(r.objects_written as u64),
        common::thousands((r.objects - r.objects_written) as u64),
        common::thousands(r.bytes_written),
        common::thousands(r.bytes_reused),
        common::thousands(r.snapshot_bytes),
    ))
}
