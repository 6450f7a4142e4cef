//! The container image (deploy/Containerfile, scripts/image.sh) built offline with buildah and
//! run with `buildah run`: `playbook --version`, a seed playbook against the built-in
//! simulator inside it, and (in_cluster.rs) the in-cluster configuration against `sim serve
//! --tls` with exactly the permissions `playbook rbac` generates.
//!
//! The image is built once per test process from the DEBUG binary cargo already built for these
//! tests (`CARGO_BIN_EXE_playbook`, stripped by the script), not a release build: a release
//! build would add minutes to CI for the same packaging. Its storage is private (vfs under the
//! target dir, chroot isolation: no daemon, no user namespaces, nothing pulled).

mod in_cluster;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long building the image may take.
const BUILD_LIMIT: Duration = Duration::from_secs(300);
/// How long one `buildah` command (not a run) may take.
const STEP_LIMIT: Duration = Duration::from_secs(120);
/// How long a playbook run inside the image may take.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The image this test process built, and buildah's private storage.
pub struct Image {
    pub tag: String,
    storage_conf: PathBuf,
    /// How long `scripts/image.sh` took.
    pub build_time: Duration,
}

/// Runs `cmd` in its own process group, at most `limit`; past it the whole group (buildah and
/// what it started in the container) is killed and the test fails.
pub fn bounded(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pgid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            panic!("{what} did not end within {limit:?}: its process group was killed");
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Image {
    /// The image, built on first use (one build per test process).
    pub fn get() -> &'static Image {
        static IMAGE: OnceLock<Image> = OnceLock::new();
        IMAGE.get_or_init(Image::build)
    }

    fn build() -> Image {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image-storage");
        let dir = std::path::absolute(&dir).expect("an absolute path");
        // Earlier runs' layers (vfs copies whole layers) are not kept.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a storage folder");
        let storage_conf = dir.join("storage.conf");
        std::fs::write(
            &storage_conf,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
                dir.display()
            ),
        )
        .expect("storage.conf");
        let tag = format!("localhost/playbook-test:{}", std::process::id());
        let mut image = Image {
            tag,
            storage_conf,
            build_time: Duration::ZERO,
        };
        let start = Instant::now();
        let out = bounded(
            image
                .env(&mut Command::new("scripts/image.sh"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("IMAGE", &image.tag)
                .arg(env!("CARGO_BIN_EXE_playbook")),
            BUILD_LIMIT,
        );
        image.build_time = start.elapsed();
        assert!(out.status.success(), "scripts/image.sh:\n{}", text(&out));
        image
    }

    /// `cmd` with this image's buildah storage and isolation.
    fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .env("BUILDAH_ISOLATION", "chroot")
            .env_remove("STORAGE_DRIVER")
    }

    /// `buildah ARGS`, bounded; asserts success and returns standard output.
    pub fn buildah(&self, args: &[&str]) -> String {
        let out = bounded(self.env(Command::new("buildah").args(args)), STEP_LIMIT);
        assert!(out.status.success(), "buildah {args:?}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A working container of the image, removed when dropped.
    pub fn container(&'static self) -> Container {
        let name = self.buildah(&["from", "--pull=never", &self.tag]);
        Container { image: self, name }
    }
}

/// A buildah working container; `buildah rm` on drop.
pub struct Container {
    image: &'static Image,
    pub name: String,
}

impl Container {
    /// `buildah run [OPTIONS] NAME -- COMMAND...`: the exit code and all output. The command
    /// runs as the image's user in its working directory.
    pub fn run(&self, options: &[&str], command: &[&str]) -> (Option<i32>, String) {
        let out = bounded(
            self.image.env(
                Command::new("buildah")
                    .arg("run")
                    .args(options)
                    .arg(&self.name)
                    .arg("--")
                    .args(command),
            ),
            RUN_LIMIT,
        );
        (out.status.code(), text(&out))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = bounded(
            self.image
                .env(Command::new("buildah").args(["rm", &self.name])),
            STEP_LIMIT,
        );
    }
}

/// The paths of every file and link in the image, relative to its root.
fn contents(image: &'static Image) -> Vec<String> {
    let c = image.container();
    let root = PathBuf::from(image.buildah(&["mount", &c.name]));
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("a folder of the image") {
            let p = e.expect("an entry").path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    image.buildah(&["umount", &c.name]);
    out.sort();
    out
}

#[test]
fn the_image_holds_the_binary_its_libraries_and_a_user_and_runs_a_playbook() {
    let image = Image::get();
    let size = image.buildah(&["images", "--format", "{{.Size}}", &image.tag]);
    eprintln!(
        "image {}: built in {:.1}s, {size}",
        image.tag,
        image.build_time.as_secs_f64()
    );
    let inspect =
        |f: &str| image.buildah(&["inspect", "--type", "image", "--format", f, &image.tag]);
    assert_eq!(inspect("{{.OCIv1.Config.User}}"), "65532:65532");
    assert_eq!(inspect("{{.OCIv1.Config.WorkingDir}}"), "/playbooks");
    assert_eq!(
        inspect("{{.OCIv1.Config.Entrypoint}}"),
        "[/usr/local/bin/playbook]"
    );
    // Exactly the binary, what ldd names, and the user's files (buildah adds the empty mount
    // points and /etc/hosts, /etc/hostname, /etc/resolv.conf to a working container).
    let ldd = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_playbook"))
        .output()
        .expect("ldd runs");
    let mut expected: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(|w| w.trim_start_matches('/').to_string())
        .collect();
    expected.extend(
        ["usr/local/bin/playbook", "etc/passwd", "etc/group"]
            .iter()
            .map(|s| s.to_string()),
    );
    expected.sort();
    let found: Vec<String> = contents(image)
        .into_iter()
        .filter(|p| !["etc/hosts", "etc/hostname", "etc/resolv.conf"].contains(&p.as_str()))
        .collect();
    assert_eq!(found, expected);

    let c = image.container();
    let (code, out) = c.run(&[], &["playbook", "--version"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        format!("playbook {}", env!("CARGO_PKG_VERSION"))
    );

    // A seed playbook from the mounted folder, against the built-in simulator (no kubeconfig,
    // no in-cluster configuration in the container: the default target is the simulator).
    let playbooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let mount = format!("{}:/playbooks:ro", playbooks.display());
    let start = Instant::now();
    let (code, out) = c.run(
        &["-v", &mount],
        &[
            "playbook",
            "run",
            "--report",
            "/home/playbook/report.json",
            "pod-failure.rhai",
        ],
    );
    eprintln!(
        "pod-failure.rhai in the image: {:.1}s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("target: simulated cluster"), "{out}");
    assert!(out.contains("1 passed"), "{out}");
    // Its user is not root: the mounted folder (root's, read-only) takes no report, and the
    // user's home does.
    let (code, out) = c.run(
        &[
            "-v",
            &format!("{}:/out", crate::support::tempdir().display()),
        ],
        &[
            "playbook",
            "report",
            "/home/playbook/report.json",
            "--markdown",
            "/out/r.md",
        ],
    );
    assert_ne!(
        code,
        Some(0),
        "a non-root user cannot write into root's folder: {out}"
    );
    assert!(out.contains("ermission denied"), "{out}");
}
