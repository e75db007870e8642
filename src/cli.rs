//! The command line: clap definitions and a thin dispatch onto the library.
use crate::config::TrainConfig;
use crate::error::{to_json_value, Result};
use crate::input_err;
use crate::models::FamilyOptions;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "convtrain",
    version,
    about = "Train, resume, evaluate and compare the CNNs of five papers on libtorch"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model (or continue a run with --resume).
    Train(Box<TrainArgs>),
    /// Score a checkpoint on the test (or validation) split.
    Evaluate(EvaluateArgs),
    /// Per-layer table, parameter counts and MACs of an architecture; nothing is trained.
    Summary(SummaryArgs),
    /// Versions, libtorch location, threads and CUDA devices.
    Info,
    /// Rewrite a checkpoint for other code: the original PyTorch names, or a plain model (SWRN → WRN).
    Export(ExportArgs),
    /// Speed of the training step, evaluation and data pipeline on a fixed list of models, optionally side by side with PyTorch eager.
    Bench(BenchArgs),
    /// Pictures of runs and models.
    Visualize {
        #[command(subcommand)]
        target: VisualizeTarget,
    },
    /// Many runs that differ in a few settings, one run directory each, resumable and shardable (Slurm arrays).
    Sweep {
        #[command(subcommand)]
        target: SweepTarget,
    },
    /// A paper table over runs: grouped by configuration minus the seed, test error mean ± std, n,
    /// parameters, MACs, epochs, best epochs.
    Table(TableArgs),
    /// The bundled paper recipes: name, paper, arch, dataset, epochs, description (`--config NAME` trains one
    /// from any directory).
    Recipes {
        /// An aligned table, CSV or JSON.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Print a shell completion script: `convtrain completions bash > ~/.local/share/bash-completion/completions/convtrain`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum SweepTarget {
    /// The VGG layer-wise feature-amount sweep (Mundt et al. 2018): one run per skew-normal variant (--list prints them).
    VggFeatures(Box<VggFeaturesSweepArgs>),
    /// A Cartesian grid over a recipe: one run per combination of the --set values.
    Grid(Box<GridSweepArgs>),
    /// Merge a sharded sweep's results into results.csv (ordered by id), reporting missing, failed and duplicate points.
    Collect {
        /// The sweep directory.
        sweep_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct VggFeaturesSweepArgs {
    /// Print the variants (id, ξ, ω, α, widths, parameter counts) instead of training them.
    #[arg(long)]
    pub list: bool,
    /// Output of --list: an aligned table, CSV or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// The variants to train, by id: e.g. 1-20,50 (default: all of --vgg-depth's).
    #[arg(long)]
    pub variants: Option<String>,
    #[command(flatten)]
    pub sweep: SweepRunArgs,
}

#[derive(Debug, Args)]
pub struct TableArgs {
    /// Run directories, sweep directories (their runs/) or directories of runs (runs/).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// markdown, csv or json.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: TableFormat,
    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Test error (100 − top-1) or test top-1, in percent.
    #[arg(long, value_enum, default_value_t)]
    pub metric: crate::sweep::table::TableMetric,
}

/// How `table` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Markdown,
    Csv,
    Json,
}

/// How `sweep … --list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct GridSweepArgs {
    /// A swept setting and its values, key=v1,v2,… (repeat for more keys; their product is swept).
    #[arg(long = "set", required = true, value_name = "KEY=VALUES")]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub sweep: SweepRunArgs,
}

/// What every sweep that trains takes: where it lives, which shard runs, and the training flags the
/// points share.
#[derive(Debug, Args)]
pub struct SweepRunArgs {
    /// The sweep directory (default: sweeps/<sweep name>); re-running the same command there continues the sweep.
    #[arg(long)]
    pub sweep_dir: Option<PathBuf>,
    /// Run shard i of n (0-based, e.g. 2/8), balanced by estimated cost; default: the Slurm array task, else all.
    #[arg(long)]
    pub shard: Option<String>,
    /// Train failed points again (from their last checkpoint).
    #[arg(long)]
    pub retry_failed: bool,
    /// Checkpoints a done point keeps.
    #[arg(long, value_enum, default_value_t)]
    pub keep_checkpoints: crate::sweep::runner::KeepCheckpoints,
    #[command(flatten)]
    pub training: TrainingFlags,
}

/// The training settings `train` and `sweep` take: a recipe file and the flags over it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Recipe file, logging and checkpoints")]
pub struct TrainingFlags {
    /// A recipe (JSON object of settings; a file, or the name of one in configs/); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Steps between progress lines when stdout is not a terminal.
    #[arg(long)]
    pub log_interval: Option<usize>,
    /// Also checkpoint every N mini-batches inside an epoch (0: at epoch ends only).
    #[arg(long)]
    pub checkpoint_interval: Option<usize>,
    /// Also checkpoint inside an epoch once this many minutes passed since the last checkpoint
    /// (default 15; 0: off).
    #[arg(long, value_parser = finite_f64)]
    pub checkpoint_minutes: Option<f64>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum VisualizeTarget {
    /// Loss, top-1 and learning rate per epoch of one or several runs.
    Curves(CurvesArgs),
    /// Which pixels survive checkered subsampling (the checkered-CNN repository's visualize.py pictures).
    Checkered(CheckeredPatternArgs),
    /// A sweep's results as the paper's figures and an interactive explorer.html.
    Sweep {
        /// A sweep directory (its results.csv) or a results CSV.
        sweep: PathBuf,
        /// Output directory (default: the sweep directory, or the CSV's).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Resolution of the PNG figures, in dots per inch.
        #[arg(long, default_value_t = crate::visualize::DEFAULT_DPI)]
        dpi: f64,
    },
    /// SWRN layer-similarity matrices per stage (heat-maps + CSV), from a run or checkpoint.
    Lsm(LsmArgs),
    /// DiracNet: the learned α (identity weight) and β of every Dirac convolution, per layer.
    Dirac(DiracArgs),
}

/// Figure file help shared by the visualize targets.
const FIGURE_OUT: &str = "The figure: .png, .svg or .pdf, chosen by the extension";

#[derive(Debug, Args)]
pub struct CurvesArgs {
    /// Run directories (each holding a log.csv).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    #[arg(long, help = format!("{FIGURE_OUT} (default: curves.png in the first run directory)"))]
    pub out: Option<PathBuf>,
    /// What the top-1 panel shows: accuracy or error (100 − accuracy), in percent.
    #[arg(long, value_enum, default_value_t)]
    pub metric: crate::visualize::curves::Metric,
    /// Logarithmic y-axes for loss and top-1 (values ≤ 0 are left out).
    #[arg(long)]
    pub log_y: bool,
    /// Range of the top-1 axis in percent, LO,HI (default: fitted to the data).
    #[arg(long, value_name = "LO,HI")]
    pub ylim: Option<String>,
    /// Legend labels, one per run, comma-separated (default: the runs' job ids).
    #[arg(long, value_delimiter = ',')]
    pub label: Option<Vec<String>>,
    /// Resolution of PNG output, in dots per inch (SVG and PDF are vector).
    #[arg(long, default_value_t = crate::visualize::DEFAULT_DPI)]
    pub dpi: f64,
}

#[derive(Debug, Args)]
pub struct LsmArgs {
    /// A run directory (best checkpoint, else last) or a checkpoint file.
    pub checkpoint: PathBuf,
    /// Output directory (default: beside the checkpoint); writes lsm.png and lsm.csv.
    #[arg(long, conflicts_with = "out")]
    pub out_dir: Option<PathBuf>,
    #[arg(long, help = format!("{FIGURE_OUT}; the CSV is written beside it (same name, .csv)"))]
    pub out: Option<PathBuf>,
    /// Resolution of PNG output, in dots per inch (SVG and PDF are vector).
    #[arg(long, default_value_t = crate::visualize::DEFAULT_DPI)]
    pub dpi: f64,
}

#[derive(Debug, Args)]
pub struct DiracArgs {
    /// A run directory (best checkpoint, else last) or a checkpoint file (convtrain's or the authors' names).
    pub checkpoint: PathBuf,
    #[arg(long, help = format!("{FIGURE_OUT} (default: dirac.png beside the checkpoint)"))]
    pub out: Option<PathBuf>,
    /// Resolution of PNG output, in dots per inch (SVG and PDF are vector).
    #[arg(long, default_value_t = crate::visualize::DEFAULT_DPI)]
    pub dpi: f64,
}

#[derive(Debug, Args)]
pub struct CheckeredPatternArgs {
    /// Side of the square image.
    #[arg(long, default_value_t = 32)]
    pub im_size: u32,
    /// Subsampling steps.
    #[arg(long, default_value_t = 3)]
    pub steps: u32,
    /// lattice, naive, random, traditional or tri.
    #[arg(long, default_value = "lattice")]
    pub method: String,
    /// Colour each submap with the original's 8 colours (refused where there is more than 8, or one).
    #[arg(long)]
    pub color: bool,
    /// Side of the output picture in pixels, nearest-neighbour scaled (default: im-size times the
    /// smallest whole factor reaching 512). SVG and PDF pixels are 1/96 inch.
    #[arg(long)]
    pub png_size: Option<u32>,
    /// Seed of the random and tri samplers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, help = format!("{FIGURE_OUT} (default: the original's file name, .png, in the current directory)"))]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Fold a model into its plain equivalent: SWRN → WRN (every shared kernel computed once), DiracNet →
    /// diracnet-folded (BN and the Dirac parameterisation folded into conv weight + bias).
    #[arg(long, visible_alias = "fold", conflicts_with = "format")]
    pub materialize: bool,
    /// pytorch (safetensors in the original code's state_dict names), convtrain (safetensors,
    /// convtrain's names and metadata) or torchscript (a traced module for torch.jit.load).
    #[arg(long, value_enum)]
    pub format: Option<crate::models::export::ExportFormat>,
    /// With --format torchscript: the batch size of the tracing input (checkered models keep it).
    #[arg(long, default_value_t = 1)]
    pub batch_size: i64,
    /// With --format pytorch: an alternative naming some architectures offer (DenseNet-BC:
    /// `torchvision` writes `norm1`/`conv1` instead of the checkered authors' `norm.1`/`conv.1`).
    #[arg(long, requires = "format")]
    pub naming: Option<String>,
    /// A run directory (its best checkpoint) or a checkpoint file.
    pub checkpoint: PathBuf,
    /// The file to write.
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Only these rows: comma-separated terms, each a row's id or a part of ids (`--list` shows them).
    #[arg(long)]
    pub filter: Option<String>,
    /// Print the rows and what each measures, and exit.
    #[arg(long)]
    pub list: bool,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch intra-op threads, both sides (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Repeats of every measurement, each side's taken in turn (the table shows the median and the
    /// spread). Many short repeats pair the two sides' measurements closely in time, so that the
    /// ratios see the same state of a shared or virtual machine.
    #[arg(long, default_value_t = 7)]
    pub repeats: usize,
    /// Timed steps per repeat, after one warm-up step.
    #[arg(long, default_value_t = 1)]
    pub steps: usize,
    /// Batch size of every model row (default: each row's own, listed by --list).
    #[arg(long)]
    pub batch: Option<i64>,
    /// Forward-pass arithmetic of the model rows, both sides; other than fp32, each row is also timed in fp32.
    #[arg(long, value_enum, default_value_t = crate::precision::Precision::Fp32)]
    pub precision: crate::precision::Precision,
    /// Channels-last (NHWC) images and weights, both sides; each row is then also timed in NCHW.
    #[arg(long)]
    pub channels_last: bool,
    /// Also measure the same rows in PyTorch eager (scripts/bench/torch_reference.py), interleaved, and print
    /// the convtrain/PyTorch ratios; every model is first checked to compute the same logits on shared weights.
    #[arg(long)]
    pub against_pytorch: bool,
    /// With --against-pytorch: only check that both sides compute the same thing (parameter count, eval logits on
    /// shared weights) for every chosen model row; nothing is timed.
    #[arg(long, requires = "against_pytorch")]
    pub verify_only: bool,
    /// The Python of --against-pytorch (default: $CONVTRAIN_TORCH_HOME/bin/python, else the set-up's environment).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The PyTorch side's script (default: scripts/bench/torch_reference.py of the source tree).
    #[arg(long)]
    pub reference_script: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Architecture (see `convtrain info` for the list).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Network depth (WRN: 6n+4).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<i64>,
    /// Width multiplier.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    /// Convert the network into a checkered CNN.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkered: Option<bool>,
    /// The families' own options (declared in their files, see `models::options`).
    #[command(next_help_heading = "Family options (each for its family's architectures)")]
    #[command(flatten)]
    #[serde(flatten)]
    pub family: FamilyOptions,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// mnist, fashion-mnist, kmnist, cifar10, cifar100 or imagefolder.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Dataset directory (default data/<dataset>).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Fetch the dataset if it is missing (public URLs, checksums verified).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<bool>,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Training recipe (augmentation, epochs and batches, SGD, schedule)")]
pub struct RecipeArgs {
    /// Training augmentations in order, comma separated: flip, crop:P[:reflect], rotate:D, rrc.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<Vec<String>>,
    /// No training augmentation at all (the checkered paper's C10* columns): clears --augment and --cutout.
    #[arg(long, conflicts_with_all = ["augment", "cutout"])]
    #[serde(skip)]
    pub no_aug: bool,
    /// Cutout after normalisation; `--cutout` alone is the papers' 16-pixel hole.
    #[arg(long, num_args = 0..=1, default_missing_value = "16")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutout: Option<i64>,
    /// Resize images to this side (train and eval).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize: Option<i64>,
    /// Replicate grey images to three channels.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gray_to_rgb: Option<bool>,
    /// Normalisation mean per channel, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// Normalisation std per channel, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f64>>,
    /// Normalise with --mean/--std (default on; `false`: raw [0,1] pixels, the VGG sweep's default).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize_data: Option<bool>,
    /// Fraction of the training set held out for validation (0: validate on the test set).
    #[arg(long, value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_split: Option<f64>,
    /// Training epochs (default 200).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Mini-batch size (default 128).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Batch size of validation and evaluation (default 256).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_batch_size: Option<usize>,
    /// Base learning rate (default 0.1).
    #[arg(long, value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// SGD momentum (default 0.9).
    #[arg(long, value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// Nesterov momentum (default on).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nesterov: Option<bool>,
    /// Momentum dampening (default 0).
    #[arg(long, value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dampening: Option<f64>,
    /// Coupled L2 weight decay (default 5e-4).
    #[arg(long, value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Parameter-name substrings excluded from weight decay, comma separated (default: the arch's).
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_decay: Option<Vec<String>>,
    /// Exclude every 1-D parameter from weight decay.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_decay_1d: Option<bool>,
    /// multistep, sgdr, cosine, constant, or milestone epochs (60,120,160) for multistep.
    #[arg(long)]
    #[serde(skip)]
    pub schedule: Option<String>,
    /// Multi-step milestones (0-based epochs), comma separated.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Vec<usize>>,
    /// Multi-step factors, one per milestone (or one for all).
    #[arg(long, value_delimiter = ',', value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gammas: Option<Vec<f64>>,
    /// Zero momentum buffers at each milestone.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_momentum: Option<bool>,
    /// SGDR: first cycle length in epochs (default 10).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sgdr_t0: Option<usize>,
    /// SGDR: cycle length multiplier (default 2).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sgdr_t_mult: Option<usize>,
    /// Floor of the SGDR and cosine schedules (default 0).
    #[arg(long, value_parser = finite_f64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_min: Option<f64>,
    /// Mini-batches accumulated per optimizer step.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accum_steps: Option<usize>,
    /// Split each mini-batch into micro-batches of at most N images (same step; BN statistics per micro-batch).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// Train on at most N mini-batches per epoch (a quick end-to-end try).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_train_batches: Option<usize>,
    /// Validate on at most N batches per epoch.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_val_batches: Option<usize>,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Seed and device")]
pub struct RunArgs {
    /// Seed of initialisation, split, shuffling, augmentation and dropout (default 0).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// libtorch intra-op threads.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Forward-pass arithmetic: fp32, or autocast to bf16 or fp16 (fp32 master weights; fp16 with loss scaling).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::precision::Precision>,
    /// Keep images and 4-D weights in channels-last (NHWC) memory order (same results, another kernel choice).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels_last: Option<bool>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Run directory")]
pub struct TrainArgs {
    /// Continue a run: its directory, or `auto` with --job-id.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Replace the run in a non-empty run directory.
    #[arg(long)]
    pub overwrite: bool,
    /// Initialise the model from a safetensors file (convtrain or the authors' PyTorch names).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Run name: the run directory is <runs-dir>/<job-id>.
    #[arg(long)]
    pub job_id: Option<String>,
    /// Where run directories go (default runs).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Any setting, key=value (value read as JSON where it parses: --set milestones=[30,60]); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print the resolved configuration (a file --config accepts; with --resume, the one the resumed run
    /// would use) and exit; nothing is written.
    #[arg(long, conflicts_with = "dry_run")]
    pub print_config: bool,
    /// Resolve the configuration, build the model and open the data (counts, parameter groups, MACs), then
    /// exit; nothing is written (with --resume: where the run continues and what changes).
    #[arg(long)]
    pub dry_run: bool,
    /// On resume, allow an --epochs the schedule refuses (any change of cosine, an SGDR end mid-cycle).
    #[arg(long)]
    pub allow_schedule_change: bool,
    #[command(flatten)]
    pub training: TrainingFlags,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A run directory (its best checkpoint, else last) or a checkpoint file — also a weights file in
    /// the original code's names (`--init-from`; give --arch and its options then).
    #[arg(long, visible_alias = "init-from")]
    pub resume: PathBuf,
    /// test or val.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Where to write the JSON result (default: beside the checkpoint).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluation batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A recipe (JSON object of settings); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the summary as JSON (architecture, input, layers, totals, weight-decay groups).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

/// A number flag: finite (JSON, and so a run's configuration, has no NaN or infinity).
fn finite_f64(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number")),
        Err(e) => Err(format!("'{s}' is not a number ({e})")),
    }
}

/// Merges flag groups into one JSON object of overrides.
fn overrides(parts: &[serde_json::Value]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for p in parts {
        if let serde_json::Value::Object(o) = p {
            m.extend(o.clone());
        }
    }
    serde_json::Value::Object(m)
}

fn to_json<T: Serialize>(t: &T) -> Result<serde_json::Value> {
    to_json_value(t, "the command-line flags")
}

/// `--schedule` takes a schedule name or the SWRN-style milestone list.
fn schedule_overrides(s: Option<&str>) -> Result<serde_json::Value> {
    let Some(s) = s else { return Ok(serde_json::json!({})) };
    if s.chars().all(|c| c.is_ascii_digit() || c == ',' || c == ' ') {
        let ms: std::result::Result<Vec<usize>, _> = s.split(',').map(|x| x.trim().parse::<usize>()).collect();
        let ms =
            ms.map_err(|_| input_err!("--schedule: '{s}' is neither a schedule name nor a comma list of epochs."))?;
        return Ok(serde_json::json!({"schedule": "multistep", "milestones": ms}));
    }
    Ok(serde_json::json!({ "schedule": s }))
}

fn load_base(config: Option<&PathBuf>) -> Result<(serde_json::Value, String)> {
    match config {
        Some(p) => TrainConfig::load_recipe(p),
        None => Ok((serde_json::Value::Null, "command line".into())),
    }
}

/// The training settings given as flags, with the run-level `extra` ones.
fn setting_flags(
    t: &TrainingFlags,
    mut extra: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value> {
    let intervals = [("log_interval", t.log_interval), ("checkpoint_interval", t.checkpoint_interval)];
    extra.extend(intervals.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v.into()))));
    if let Some(m) = t.checkpoint_minutes {
        extra.insert("checkpoint_minutes".into(), m.into());
    }
    Ok(overrides(&[
        to_json(&t.model)?,
        to_json(&t.data)?,
        to_json(&t.recipe)?,
        schedule_overrides(t.recipe.schedule.as_deref())?,
        if t.recipe.no_aug { serde_json::json!({"augment": [], "cutout": 0}) } else { serde_json::json!({}) },
        to_json(&t.run)?,
        serde_json::Value::Object(extra),
    ]))
}

/// Resolves `train`'s configuration from its recipe file and flags; also returns the settings given
/// (the recipe file's and the flags', flags winning), which `--resume auto` checks against the run.
pub fn train_config(a: &TrainArgs) -> Result<(TrainConfig, serde_json::Value)> {
    let (base, source) = load_base(a.training.config.as_ref())?;
    let mut extra = serde_json::Map::new();
    if let Some(j) = &a.job_id {
        extra.insert("job_id".into(), j.clone().into());
    }
    if let Some(d) = &a.runs_dir {
        extra.insert("runs_dir".into(), d.display().to_string().into());
    }
    for set in &a.sets {
        let (k, v) = crate::config::parse_setting(set)?;
        extra.insert(k, v);
    }
    let o = setting_flags(&a.training, extra)?;
    let given = overrides(&[base.clone(), o.clone()]);
    Ok((TrainConfig::resolve(base, o, &source)?, given))
}

/// A sweep's shared settings: its recipe file's object, and the flags (which override it).
pub fn sweep_settings(
    a: &SweepRunArgs,
) -> Result<(serde_json::Map<String, serde_json::Value>, serde_json::Map<String, serde_json::Value>)> {
    let (base, source) = load_base(a.training.config.as_ref())?;
    let recipe = match base {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => serde_json::Map::new(),
        _ => return Err(input_err!("{source}: a config file must hold one JSON object of settings.")),
    };
    match setting_flags(&a.training, serde_json::Map::new())? {
        serde_json::Value::Object(flags) => Ok((recipe, flags)),
        _ => Ok((recipe, serde_json::Map::new())),
    }
}

/// Evaluate's overrides of the run configuration.
pub fn evaluate_overrides(a: &EvaluateArgs) -> Result<serde_json::Value> {
    let mut extra = serde_json::Map::new();
    if let Some(b) = a.batch_size {
        if !(1..=crate::config::MAX_BATCH).contains(&b) {
            return Err(input_err!("--batch-size: must be between 1 and {}, got {b}.", crate::config::MAX_BATCH));
        }
        extra.insert("eval_batch_size".into(), b.into());
    }
    Ok(overrides(&[to_json(&a.model)?, to_json(&a.data)?, to_json(&a.run)?, serde_json::Value::Object(extra)]))
}

/// Summary's configuration.
pub fn summary_config(a: &SummaryArgs) -> Result<TrainConfig> {
    let (base, source) = load_base(a.config.as_ref())?;
    TrainConfig::resolve(base, overrides(&[to_json(&a.model)?, to_json(&a.data)?]), &source)
}
