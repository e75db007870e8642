//! `convtrain export`: a checkpoint in the original code's names, or folded into a plain model.
use crate::cli::ExportArgs;
use crate::error::Result;
use crate::input_err;
use crate::models::export;
use crate::train::run_dir::refuse_run_file;

pub fn run(a: &ExportArgs) -> Result<()> {
    refuse_run_file(&a.out, "export: the output")?;
    if a.materialize {
        let plain = export::materialize(&a.checkpoint, &a.out)?;
        println!(
            "wrote {} (a plain {} checkpoint; evaluate it with --resume {})",
            a.out.display(),
            plain.arch,
            a.out.display()
        );
    } else {
        let format = a
            .format
            .ok_or_else(|| input_err!("export: choose --materialize or --format pytorch|convtrain|torchscript."))?;
        let options = export::ExportOptions { naming: a.naming.as_deref(), trace_batch: a.batch_size };
        let what = export::export(&a.checkpoint, &a.out, format, options)?;
        println!("wrote {} ({what})", a.out.display());
    }
    Ok(())
}
