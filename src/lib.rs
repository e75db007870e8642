//! convtrain: reproduces the training recipes of five CNN papers on libtorch (through `tch`).
//!
//! The tree mirrors the architecture: `data` (formats, augmentation, loaders), `models` (one file per
//! paper family, shared layers beside them, one registry), `train` (optimizer, schedules, checkpoints,
//! logging, engine), `visualize`, and `cli` thin over them.
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod models;
pub mod train;
pub mod visualize;

pub use error::{Error, Result};

/// The libtorch release tch 0.26 is built against.
pub const LIBTORCH_VERSION: &str = "2.13.0";
/// The tch crate version.
pub const TCH_VERSION: &str = "0.26.0";

use cli::{Command, VisualizeTarget};

/// Executes one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => {
            let (cfg, flags) = cli::train_config(&a)?;
            train::engine::install_interrupt_handler();
            let opts = train::engine::StartOptions {
                resume: a.resume.clone(),
                overwrite: a.overwrite,
                init_from: a.init_from.clone(),
                flags,
            };
            train::engine::train(cfg, &opts).map(|_| ())
        }
        Command::Evaluate(a) => {
            let req = train::evaluate::EvaluateRequest {
                checkpoint: a.resume.clone(),
                split: a.split.clone(),
                overrides: cli::evaluate_overrides(&a),
                out: a.out.clone(),
            };
            train::evaluate::evaluate_checkpoint(&req).map(|_| ())
        }
        Command::Summary(a) => {
            let cfg = cli::summary_config(&a)?;
            let model = train::engine::build_model(&cfg, tch::Device::Cpu)?;
            let excl = train::engine::decay_exclusion(&cfg, &model);
            let s = models::summary::summarize(&model, cfg.weight_decay, &excl);
            let mc = &model.config;
            println!(
                "{} on {} ({} classes, {}x{}x{} input)\n",
                mc.arch, cfg.dataset, mc.num_classes, mc.in_channels, mc.image_size, mc.image_size
            );
            print!("{}", s.render());
            Ok(())
        }
        Command::Info => {
            print!("{}", info_text());
            Ok(())
        }
        Command::Export(a) => {
            if a.materialize {
                let plain = models::export::materialize(&a.checkpoint, &a.out)?;
                println!(
                    "wrote {} (a plain {} checkpoint; evaluate it with --resume {})",
                    a.out.display(),
                    plain.arch,
                    a.out.display()
                );
            } else {
                let format = a
                    .format
                    .ok_or_else(|| input_err!("export: choose --materialize or --format pytorch|convtrain."))?;
                let n = models::export::export(&a.checkpoint, &a.out, format)?;
                println!("wrote {} ({n} tensors)", a.out.display());
            }
            Ok(())
        }
        Command::Visualize { target } => match target {
            VisualizeTarget::Curves { runs, out } => {
                let data = visualize::curves::load_runs(&runs)?;
                let out = out.unwrap_or_else(|| runs[0].join("curves.png"));
                visualize::curves::plot_curves(&data, &out)?;
                println!("wrote {}", out.display());
                Ok(())
            }
            VisualizeTarget::Checkered(a) => {
                let opts = visualize::checkered::Options {
                    im_size: a.im_size,
                    steps: a.steps,
                    method: a.method.parse()?,
                    png_resize: a.png_size,
                    color: a.color,
                    seed: a.seed,
                };
                let picture = visualize::checkered::render(&opts)?;
                for line in picture.sequence_lines() {
                    println!("{line}");
                }
                let out = a.out.unwrap_or_else(|| opts.file_name().into());
                picture.save(&out)?;
                println!("wrote {}", out.display());
                Ok(())
            }
            VisualizeTarget::Lsm { checkpoint, out_dir } => {
                let path = train::checkpoint::resolve(&checkpoint, "best")?;
                let ck = train::checkpoint::load(&path)?;
                let named: Vec<_> = ck.model_tensors();
                let groups = visualize::lsm::swrn_lsm(&named);
                if groups.is_empty() {
                    return Err(input_err!(
                        "{}: no SWRN coefficients (stage_s.b.convX.coefficients) in this checkpoint; the layer-similarity matrix needs a soft-sharing model.",
                        path.display()
                    ));
                }
                let dir =
                    out_dir.unwrap_or_else(|| path.parent().map(std::path::Path::to_path_buf).unwrap_or_default());
                std::fs::create_dir_all(&dir)
                    .map_err(|e| input_err!("{}: cannot create the output directory ({e}).", dir.display()))?;
                visualize::lsm::write_lsm_png(&groups, &dir.join("lsm.png"))?;
                visualize::lsm::write_lsm_csv(&groups, &dir.join("lsm.csv"))?;
                println!("wrote {} and {}", dir.join("lsm.png").display(), dir.join("lsm.csv").display());
                Ok(())
            }
        },
    }
}

/// What `convtrain info` prints.
pub fn info_text() -> String {
    let mut s = String::new();
    use std::fmt::Write;
    let _ = writeln!(s, "convtrain {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "tch {TCH_VERSION}, libtorch {LIBTORCH_VERSION}");
    let _ = writeln!(s, "libtorch location: {}", env!("CONVTRAIN_LIBTORCH_LIB"));
    let _ = writeln!(s, "CPU threads (intra-op): {}", tch::get_num_threads());
    let n = tch::Cuda::device_count();
    let _ = writeln!(
        s,
        "CUDA available: {}, devices: {n}, cuDNN: {}",
        tch::Cuda::is_available(),
        tch::Cuda::cudnn_is_available()
    );
    if n > 0 {
        let names = std::process::Command::new("nvidia-smi")
            .args(["--query-gpu=index,name,memory.total", "--format=csv,noheader"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string());
        match names {
            Some(t) => t.lines().for_each(|l| {
                let _ = writeln!(s, "  cuda:{l}");
            }),
            None => (0..n).for_each(|i| {
                let _ = writeln!(s, "  cuda:{i} (name unavailable: nvidia-smi not found)");
            }),
        }
    }
    let _ = writeln!(s, "architectures:");
    for a in models::registry() {
        let _ = writeln!(s, "  {:<16} [{}] {}", a.name, a.family, a.about);
    }
    s
}
