//! `convtrain visualize`: training curves and the per-paper pictures.
use crate::checkpoint;
use crate::cli::VisualizeTarget;
use crate::error::Result;
use crate::input_err;
use crate::models::diracnet;
use crate::train::run_dir::refuse_run_file;
use crate::visualize;

pub fn run(target: VisualizeTarget) -> Result<()> {
    match target {
        VisualizeTarget::Curves { runs, out } => {
            let data = visualize::curves::load_runs(&runs)?;
            let out = out.unwrap_or_else(|| runs[0].join("curves.png"));
            refuse_run_file(&out, "--out")?;
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
            refuse_run_file(&out, "--out")?;
            picture.save(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        VisualizeTarget::Lsm { checkpoint, out_dir } => {
            let path = checkpoint::resolve(&checkpoint, "best")?;
            let ck = checkpoint::load(&path)?;
            let groups = visualize::lsm::swrn_lsm(&ck.model_tensors());
            if groups.is_empty() {
                return Err(input_err!(
                    "{}: no SWRN coefficients (stage_s.b.convX.coefficients) in this checkpoint; the layer-similarity matrix needs a soft-sharing model.",
                    path.display()
                ));
            }
            let dir = out_dir.unwrap_or_else(|| path.parent().map(std::path::Path::to_path_buf).unwrap_or_default());
            std::fs::create_dir_all(&dir)
                .map_err(|e| input_err!("{}: cannot create the output directory ({e}).", dir.display()))?;
            visualize::lsm::write_lsm_png(&groups, &dir.join("lsm.png"))?;
            visualize::lsm::write_lsm_csv(&groups, &dir.join("lsm.csv"))?;
            println!("wrote {} and {}", dir.join("lsm.png").display(), dir.join("lsm.csv").display());
            Ok(())
        }
        VisualizeTarget::Dirac { checkpoint, out } => {
            let path = checkpoint::resolve(&checkpoint, "best")?;
            let ck = checkpoint::load(&path)?;
            let layers = diracnet::identity_weights(&ck.model_tensors())?;
            if layers.is_empty() {
                return Err(input_err!(
                    "{}: no Dirac convolutions (groupG.blockB.alpha, .beta and .conv) in this checkpoint; visualize dirac needs an unfolded DiracNet (folding removes alpha and beta).",
                    path.display()
                ));
            }
            let out = out.unwrap_or_else(|| path.with_file_name("dirac.png"));
            let stem = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let title = format!("DiracNet α and β per layer: {stem} ({} Dirac convolutions)", layers.len());
            visualize::dirac::plot_identity_weights(&layers, &title, &out)?;
            for line in visualize::dirac::table(&layers) {
                println!("{line}");
            }
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}
