//! `convtrain visualize`: training curves and the per-paper pictures, each as PNG, SVG or PDF by the
//! output's extension (src/visualize/mod.rs).
use crate::checkpoint;
use crate::cli::VisualizeTarget;
use crate::error::Result;
use crate::input_err;
use crate::models::diracnet;
use crate::train::run_dir::refuse_run_file;
use crate::visualize::{self, checkered, curves, Format};

pub fn run(target: VisualizeTarget) -> Result<()> {
    match target {
        VisualizeTarget::Curves(a) => {
            let opts = curves::CurveOptions {
                metric: a.metric,
                log_y: a.log_y,
                ylim: a.ylim.as_deref().map(curves::parse_ylim).transpose()?,
            };
            let out = a.out.unwrap_or_else(|| a.runs[0].join("curves.png"));
            refuse_run_file(&out, "--out")?;
            Format::of(&out)?;
            let runs = curves::load_runs(&a.runs, a.label.as_deref())?;
            curves::plot_curves(&runs, &opts, &out, a.dpi)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        VisualizeTarget::Checkered(a) => {
            let opts = checkered::Options {
                im_size: a.im_size,
                steps: a.steps,
                method: a.method.parse()?,
                png_resize: None,
                color: a.color,
                seed: a.seed,
            };
            opts.check_color()?;
            let out = a.out.unwrap_or_else(|| opts.file_name().into());
            refuse_run_file(&out, "--out")?;
            Format::of(&out)?;
            let side = a.png_size.unwrap_or_else(|| checkered::default_side(a.im_size));
            let picture = checkered::render(&opts)?;
            for line in picture.described_sequences() {
                println!("{line}");
            }
            picture.save(&out, side)?;
            println!("wrote {} ({side}×{side} pixels)", out.display());
            Ok(())
        }
        VisualizeTarget::Sweep { sweep, out_dir, dpi } => {
            let table = visualize::sweep::SweepTable::read(&sweep)?;
            let dir = out_dir.unwrap_or_else(|| {
                if sweep.is_dir() {
                    sweep.clone()
                } else {
                    sweep.parent().map(std::path::Path::to_path_buf).unwrap_or_default()
                }
            });
            let title = format!("sweep {}", sweep.display());
            for f in visualize::sweep::write_sweep_pictures(&table, &title, &dir, dpi)? {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        VisualizeTarget::Lsm(a) => {
            let path = checkpoint::resolve(&a.checkpoint, "best")?;
            let figure = match (a.out, a.out_dir) {
                (Some(f), _) => f,
                (None, dir) => dir
                    .unwrap_or_else(|| path.parent().map(std::path::Path::to_path_buf).unwrap_or_default())
                    .join("lsm.png"),
            };
            let csv = figure.with_extension("csv");
            refuse_run_file(&figure, "--out")?;
            Format::of(&figure)?;
            refuse_run_file(&csv, "--out")?;
            let ck = checkpoint::load(&path)?;
            let groups = visualize::lsm::swrn_lsm(&ck.model_tensors());
            if groups.is_empty() {
                return Err(input_err!(
                    "{}: no SWRN coefficients (stage_s.b.convX.coefficients) in this checkpoint; the layer-similarity matrix needs a soft-sharing model.",
                    path.display()
                ));
            }
            visualize::lsm::write_lsm_figure(&groups, &figure, a.dpi)?;
            visualize::lsm::write_lsm_csv(&groups, &csv)?;
            println!("wrote {} and {}", figure.display(), csv.display());
            Ok(())
        }
        VisualizeTarget::Dirac(a) => {
            let path = checkpoint::resolve(&a.checkpoint, "best")?;
            let out = a.out.unwrap_or_else(|| path.with_file_name("dirac.png"));
            refuse_run_file(&out, "--out")?;
            Format::of(&out)?;
            let ck = checkpoint::load(&path)?;
            let layers = diracnet::identity_weights(&ck.model_tensors())?;
            if layers.is_empty() {
                return Err(input_err!(
                    "{}: no Dirac convolutions (groupG.blockB.alpha, .beta and .conv) in this checkpoint; visualize dirac needs an unfolded DiracNet (folding removes alpha and beta).",
                    path.display()
                ));
            }
            let stem = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let title = format!("DiracNet α and β per layer: {stem} ({} Dirac convolutions)", layers.len());
            visualize::dirac::plot_identity_weights(&layers, &title, &out, a.dpi)?;
            for line in visualize::dirac::table(&layers) {
                println!("{line}");
            }
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}
