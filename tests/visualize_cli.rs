//! `convtrain visualize` through the CLI: every target in every format, the curves' options and the
//! checkered target's sizes, colours and labelled output (the LSM target is run in swrn_cli.rs,
//! which trains the SWRN it needs).
mod common;
use common::*;
use std::path::Path;

/// A run directory with a hand-written log.csv of `epochs` epochs (and a config.json naming `job`).
fn write_run(dir: &Path, job: Option<&str>, epochs: usize, lr0: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut log = String::from(
        "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,best_val_top1,epoch_seconds,images_per_second\n",
    );
    for e in 1..=epochs {
        let lr = if e > epochs / 2 { lr0 / 10.0 } else { lr0 };
        let t = 1.0 - 0.6f64.powi(e as i32);
        log += &format!(
            "{e},{lr},{},{},{},{},99.9,{},1.0,1000.0\n",
            2.3 - 2.0 * t,
            90.0 + 9.5 * t,
            2.3 - 1.9 * t,
            89.0 + 9.0 * t,
            89.0 + 9.0 * t
        );
    }
    std::fs::write(dir.join("log.csv"), log).unwrap();
    if let Some(j) = job {
        std::fs::write(dir.join("config.json"), format!("{{\"config\": {{\"job_id\": \"{j}\"}}}}")).unwrap();
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

/// The root element's width and height attributes of an SVG file.
fn svg_size(path: &Path) -> (u32, u32) {
    let text = std::fs::read_to_string(path).unwrap();
    let root = &text[text.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    let attr = |name: &str| -> u32 {
        let v = &root[root.find(&format!(" {name}=\"")).unwrap() + name.len() + 3..];
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

fn assert_pdf(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "{}", path.display());
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(text.matches("/Type /Page").count() - text.matches("/Type /Pages").count(), 1, "one page");
}

#[test]
fn curves_in_every_format_with_labels_metrics_and_limits() {
    let d = tempfile::tempdir().unwrap();
    write_run(&d.path().join("runs/long"), Some("wrn-16-4-seed1"), 12, 0.1);
    write_run(&d.path().join("runs/short"), None, 1, 0.1);
    let runs = ["runs/long", "runs/short"];
    let curves = |extra: &[&str]| {
        let mut a = vec!["visualize", "curves"];
        a.extend(runs);
        a.extend(extra);
        run(d.path(), &a)
    };
    for (ext, extra) in
        [("png", vec![]), ("svg", vec!["--metric", "error", "--log-y"]), ("pdf", vec!["--ylim", "80,100"])]
    {
        let out = format!("c.{ext}");
        let mut a = vec!["--out", out.as_str()];
        a.extend(extra);
        let o = curves(&a);
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        assert!(stdout(&o).contains(&out));
    }
    let (w, h) = svg_size(&d.path().join("c.svg"));
    assert_eq!(w, 720);
    // PNG at the default 300 dpi: every layout pixel (1/96 in) is 3.125 pixels.
    assert_eq!(png_size(&d.path().join("c.png")), (2250, (h as f64 * 3.125).round() as u32));
    assert_pdf(&d.path().join("c.pdf"));
    let svg = std::fs::read_to_string(d.path().join("c.svg")).unwrap();
    for text in ["wrn-16-4-seed1", "short", "top-1 error (%)", "learning rate", "validation", "training"] {
        assert!(svg.contains(text), "the SVG lacks {text:?}");
    }
    let o = curves(&["--out", "l.svg", "--label", "WRN,one epoch", "--dpi", "150"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(d.path().join("l.svg")).unwrap().contains("one epoch"));
    // The default output goes into the first run.
    assert!(curves(&[]).status.success());
    assert!(png_size(&d.path().join("runs/long/curves.png")).0 == 2250);

    assert_input_error(&curves(&["--out", "c.jpg"]), &["c.jpg", ".png, .svg or .pdf"]);
    assert_input_error(&curves(&["--out", "c"]), &[".png, .svg or .pdf"]);
    assert_input_error(&curves(&["--label", "only-one"]), &["--label", "2 runs"]);
    assert_input_error(&curves(&["--ylim", "90"]), &["--ylim"]);
    assert_input_error(&curves(&["--ylim", "100,90"]), &["--ylim"]);
    assert_input_error(&curves(&["--log-y", "--ylim", "0,10"]), &["--ylim", "LO > 0"]);
    assert_input_error(&curves(&["--dpi", "0"]), &["--dpi"]);
    assert_input_error(&run(d.path(), &["visualize", "curves", "nowhere"]), &["nowhere", "log.csv"]);
}

#[test]
fn checkered_sizes_colours_formats_and_labelled_sequences() {
    let d = tempfile::tempdir().unwrap();
    let chk = |args: &[&str]| {
        let mut a = vec!["visualize", "checkered"];
        a.extend(args);
        run(d.path(), &a)
    };
    // Default: the original's file name, upscaled to a readable 512 pixels.
    let o = chk(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&d.path().join("checkered_lattice_32_3.png")), (512, 512));
    let out = stdout(&o);
    assert!(out.contains("sampler chosen for each submap at each step"), "{out}");
    assert!(out.contains("step 1 (1 submap): ") && out.contains("step 3 (4 submaps): "), "{out}");
    assert!(out.contains("(512×512 pixels)"), "{out}");

    // tri honours --png-size and --color (one step: three submaps in three colours).
    let o =
        chk(&["--method", "tri", "--im-size", "27", "--steps", "1", "--color", "--png-size", "300", "--out", "t.png"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("n-rooks"));
    let t = image::open(d.path().join("t.png")).unwrap().to_rgb8();
    assert_eq!(t.dimensions(), (300, 300));
    for colour in [[0, 0, 0], [255, 0, 0], [0, 255, 0]] {
        assert!(t.pixels().any(|p| p.0 == colour), "tri lacks colour {colour:?}");
    }
    assert_input_error(&chk(&["--method", "tri", "--steps", "2", "--color"]), &["--color", "9 submaps"]);
    assert_input_error(&chk(&["--steps", "4", "--color"]), &["--color", "16 submaps"]);
    assert_input_error(&chk(&["--method", "traditional", "--color"]), &["--color", "traditional"]);
    assert_input_error(&chk(&["--png-size", "0"]), &["--png-size"]);
    assert_input_error(&chk(&["--out", "p.bmp"]), &["p.bmp", ".png, .svg or .pdf"]);

    for ext in ["svg", "pdf"] {
        let out = format!("p.{ext}");
        let o = chk(&["--method", "random", "--seed", "3", "--color", "--out", &out]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(svg_size(&d.path().join("p.svg")), (512, 512));
    assert_pdf(&d.path().join("p.pdf"));
    let o = chk(&["--method", "traditional", "--out", "trad.png"]);
    assert!(stdout(&o).starts_with("traditional: no samplers"), "{}", stdout(&o));
}
