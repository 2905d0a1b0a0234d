//! Tiny wheels built by the tests: a module, `METADATA`, `WHEEL` and `RECORD`, nothing else.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

use crate::target::Target;
use crate::wheelhouse::WheelName;

/// The Jetson Orin profile as `targets.toml` defines it.
pub fn orin() -> Target {
    Target {
        name: "jetson-orin".to_string(),
        description: String::new(),
        arch: "aarch64".to_string(),
        cuda_arch_list: vec!["8.7".to_string()],
        python_version: "3.10".to_string(),
        platform_tag: "linux_aarch64".to_string(),
        cuda_home: PathBuf::from("/usr/local/cuda"),
        cross: None,
    }
}

pub struct TestWheel {
    name: String,
    version: String,
    tag: String,
    wheel_tags: Option<Vec<String>>,
    requires: Vec<String>,
    requires_python: Option<String>,
}

impl TestWheel {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            tag: "cp310-cp310-linux_aarch64".to_string(),
            wheel_tags: None,
            requires: Vec::new(),
            requires_python: None,
        }
    }

    /// The tag in the file name (and, expanded, in `WHEEL` unless `wheel_tags` says otherwise).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.to_string();
        self
    }

    pub fn wheel_tags(mut self, tags: &[&str]) -> Self {
        self.wheel_tags = Some(tags.iter().map(|t| t.to_string()).collect());
        self
    }

    pub fn requires(mut self, reqs: &[&str]) -> Self {
        self.requires = reqs.iter().map(|r| r.to_string()).collect();
        self
    }

    pub fn requires_python(mut self, spec: &str) -> Self {
        self.requires_python = Some(spec.to_string());
        self
    }

    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.whl", self.name, self.version, self.tag)
    }

    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join(self.file_name());
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let dist_info = format!("{}-{}.dist-info", self.name, self.version);
        let module = format!("{}/__init__.py", self.name.to_lowercase());
        let members = [
            (module, "VALUE = 1\n".to_string()),
            (format!("{dist_info}/METADATA"), self.metadata()),
            (format!("{dist_info}/WHEEL"), self.wheel()),
            (format!("{dist_info}/RECORD"), String::new()),
        ];
        for (name, text) in members {
            zip.start_file(name, opts).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn metadata(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if let Some(rp) = &self.requires_python {
            m.push_str(&format!("Requires-Python: {rp}\n"));
        }
        for r in &self.requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m.push_str("\nRequires-Dist: in the description, not a header\n");
        m
    }

    fn wheel(&self) -> String {
        let tags = self
            .wheel_tags
            .clone()
            .unwrap_or_else(|| WheelName::parse(&self.file_name()).unwrap().tags());
        let mut w =
            "Wheel-Version: 1.0\nGenerator: jetforge-tests\nRoot-Is-Purelib: false\n".to_string();
        for t in tags {
            w.push_str(&format!("Tag: {t}\n"));
        }
        w
    }
}
