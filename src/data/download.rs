//! `--download`: fetches MNIST, Fashion-MNIST, KMNIST, CIFAR-10 or CIFAR-100 into the data directory,
//! checking every file against its published SHA-256 before it is kept. Never called implicitly.
//!
//! URLs are the mirrors torchvision uses; the SHA-256 sums are those TensorFlow Datasets publishes for the
//! same files (`tensorflow_datasets/url_checksums/{mnist,fashion_mnist,kmnist,cifar10,cifar100}.txt`).
//! The MNIST files of the ossci-datasets mirror are byte-identical to the originals (torchvision checks
//! the same MD5 for every mirror), and so are those of TFDS's cvdf mirror, kept here as the fallback.
//!
//! The MNIST copy bundled under `data/mnist/` was re-compressed: its `.gz` files are not byte-identical
//! to the published ones and do not match these sums. [`download`] leaves files that are already present
//! alone, so it never replaces them.
use super::{cifar, idx, Dataset};
use crate::error::{IoContext, Result};
use crate::input_err;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file to fetch: its name on the server and its SHA-256.
struct Remote {
    file: &'static str,
    sha256: &'static str,
}

/// Where a dataset comes from.
struct Origin {
    /// Base URLs, tried in order.
    mirrors: &'static [&'static str],
    files: &'static [Remote],
    /// A `.tar.gz` to unpack (CIFAR) rather than files to keep as they are (IDX `.gz`).
    archive: bool,
}

const MNIST: Origin = Origin {
    mirrors: &["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    files: &[
        Remote {
            file: "train-images-idx3-ubyte.gz",
            sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        },
        Remote {
            file: "train-labels-idx1-ubyte.gz",
            sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        },
        Remote {
            file: "t10k-images-idx3-ubyte.gz",
            sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        },
        Remote {
            file: "t10k-labels-idx1-ubyte.gz",
            sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ],
    archive: false,
};

const FASHION_MNIST: Origin = Origin {
    mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    files: &[
        Remote {
            file: "train-images-idx3-ubyte.gz",
            sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        },
        Remote {
            file: "train-labels-idx1-ubyte.gz",
            sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        },
        Remote {
            file: "t10k-images-idx3-ubyte.gz",
            sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        },
        Remote {
            file: "t10k-labels-idx1-ubyte.gz",
            sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ],
    archive: false,
};

const KMNIST: Origin = Origin {
    mirrors: &["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
    files: &[
        Remote {
            file: "train-images-idx3-ubyte.gz",
            sha256: "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        },
        Remote {
            file: "train-labels-idx1-ubyte.gz",
            sha256: "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        },
        Remote {
            file: "t10k-images-idx3-ubyte.gz",
            sha256: "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        },
        Remote {
            file: "t10k-labels-idx1-ubyte.gz",
            sha256: "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        },
    ],
    archive: false,
};

const CIFAR10: Origin = Origin {
    mirrors: &["https://www.cs.toronto.edu/~kriz/"],
    files: &[Remote {
        file: "cifar-10-binary.tar.gz",
        sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    }],
    archive: true,
};

const CIFAR100: Origin = Origin {
    mirrors: &["https://www.cs.toronto.edu/~kriz/"],
    files: &[Remote {
        file: "cifar-100-binary.tar.gz",
        sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    }],
    archive: true,
};

/// Downloads `name` into `dir` (created if needed). Files already present are kept as they are: an IDX
/// file counts as present raw or gzipped, CIFAR when all its `.bin` files are found where
/// [`super::open`] looks. Each download goes to `<file>.part`, is checked against its SHA-256 and only
/// then renamed (IDX) or unpacked and deleted (CIFAR tarballs). Prints one line per fetched URL to stderr.
pub fn download(name: &str, dir: &Path) -> Result<()> {
    let ds = super::Dataset::parse(name)?;
    let origin = match ds {
        Dataset::Mnist => &MNIST,
        Dataset::FashionMnist => &FASHION_MNIST,
        Dataset::Kmnist => &KMNIST,
        Dataset::Cifar10 => &CIFAR10,
        Dataset::Cifar100 => &CIFAR100,
        Dataset::ImageFolder => {
            return Err(input_err!(
                "--download fetches MNIST, Fashion-MNIST, KMNIST, CIFAR-10 and CIFAR-100 only; an image folder \
                 (train/<class>/*, val/<class>/*) has to be put in place by hand."
            ))
        }
    };
    std::fs::create_dir_all(dir).at(dir)?;
    if origin.archive {
        let layout = cifar::layout(ds);
        let all: Vec<&str> = layout.train_files.iter().chain(layout.test_files).copied().collect();
        if cifar::find_files(ds, dir, &all).is_ok() {
            return Ok(());
        }
    }
    for remote in origin.files {
        let dest = dir.join(remote.file);
        if !origin.archive && idx::find_file(dir, remote.file.trim_end_matches(".gz")).is_some() {
            continue;
        }
        fetch(origin.mirrors, remote, &dest)?;
        if origin.archive {
            extract_tar_gz(&dest, dir)?;
            std::fs::remove_file(&dest).at(&dest)?;
        }
    }
    Ok(())
}

/// Fetches `remote` from the first mirror that serves it with the right checksum.
fn fetch(mirrors: &[&str], remote: &Remote, dest: &Path) -> Result<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .build();
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = format!("{mirror}{}", remote.file);
        eprintln!("downloading {url} -> {}", dest.display());
        let attempt = match agent.get(&url).call() {
            Ok(response) => save_verified(response.into_reader(), dest, remote.sha256, &url),
            // ureq's message names the URL.
            Err(e) => Err(input_err!("{e}")),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Err(input_err!(
        "--download: could not fetch {} into {}: {}. Check the network, or put the file there by hand.",
        remote.file,
        dest.parent().unwrap_or(dest).display(),
        failures.join("; ")
    ))
}

/// Writes `reader` to `<dest>.part` while hashing it; renames it to `dest` if its SHA-256 is `sha256`,
/// deletes it otherwise. `origin` names the source in messages.
fn save_verified(mut reader: impl Read, dest: &Path, sha256: &str, origin: &str) -> Result<()> {
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let mut file = File::create(&part).at(&part)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let copied = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(input_err!("reading {origin} failed: {e}")),
        };
        hasher.update(&buf[..n]);
        if let Err(e) = file.write_all(&buf[..n]) {
            break Err(crate::error::Error::Io { path: part.clone(), source: e });
        }
    };
    let checked = copied.and_then(|()| file.flush().at(&part)).and_then(|()| {
        let actual = hex(&hasher.finalize());
        if actual == sha256 {
            Ok(())
        } else {
            Err(input_err!("{origin}: SHA-256 {actual} does not match the published {sha256}; the file was discarded."))
        }
    });
    drop(file);
    match checked {
        Ok(()) => std::fs::rename(&part, dest).at(dest),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// The SHA-256 of a file, in lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut reader = BufReader::new(File::open(path).at(path)?);
    let mut hasher = Sha256::new();
    std::io::copy(&mut reader, &mut hasher).at(path)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpacks a `.tar.gz` into `dir` (entries that would land outside `dir` are refused by `tar`).
pub fn extract_tar_gz(archive: &Path, dir: &Path) -> Result<()> {
    let file = File::open(archive).at(archive)?;
    tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file))).unpack(dir).map_err(|e| {
        input_err!("{}: cannot unpack the tar.gz archive into {} ({e}).", archive.display(), dir.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::tests::write_dataset;
    use crate::data::{open, FolderTransform};
    use crate::error::Error;

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn verified_save_keeps_good_and_discards_bad_data() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.gz");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        save_verified(&b"abc"[..], &dest, abc, "test://abc").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
        let other = dir.path().join("other.gz");
        match save_verified(&b"abd"[..], &other, abc, "test://abd") {
            Err(Error::Input(m)) => assert!(m.contains("test://abd") && m.contains(abc), "{m}"),
            r => panic!("{r:?}"),
        }
        assert!(!other.exists() && !dir.path().join("other.gz.part").exists());
    }

    #[test]
    fn present_files_are_left_alone_and_checksums_are_well_formed() {
        for origin in [&MNIST, &FASHION_MNIST, &KMNIST, &CIFAR10, &CIFAR100] {
            for r in origin.files {
                assert!(
                    r.sha256.len() == 64 && r.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                );
            }
        }
        // All four files are present, so nothing is fetched (there is no network here).
        let dir = tempfile::tempdir().unwrap();
        for f in MNIST.files {
            std::fs::write(dir.path().join(f.file), b"present").unwrap();
        }
        download("mnist", dir.path()).unwrap();
        assert!(matches!(download("imagefolder", dir.path()), Err(Error::Input(_))));
    }

    #[test]
    fn extracts_a_cifar_tarball_that_open_then_reads() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging/cifar-10-batches-bin");
        std::fs::create_dir_all(&staging).unwrap();
        write_dataset(Dataset::Cifar10, &staging);
        let archive = dir.path().join("cifar-10-binary.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&archive).unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        builder.append_dir_all("cifar-10-batches-bin", &staging).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        extract_tar_gz(&archive, &data).unwrap();
        let test = open("cifar10", &data, false, &FolderTransform::default()).unwrap();
        assert_eq!(test.len(), 2);
        // Everything is present now, so download does nothing.
        download("cifar10", &data).unwrap();
        std::fs::write(&archive, b"not a tarball").unwrap();
        assert!(matches!(extract_tar_gz(&archive, &data), Err(Error::Input(_))));
    }
}
