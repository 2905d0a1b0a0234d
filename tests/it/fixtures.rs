//! Fixture packages built by the tests (never downloaded): a C extension (`first`), a second C
//! extension compiled against `first`'s header and pinned to it (`second`), a source-only tree
//! (`kernels`) and a pure-Python package that bakes that tree in at build time (`third`).

use crate::util::tree;

pub const FIRST_SETUP: &str = r#"import os
from setuptools import setup, Extension
setup(
    name="first",
    version=os.environ.get("FIRST_VERSION", "1.0.0"),
    packages=["first"],
    package_data={"first": ["include/first.h"]},
    ext_modules=[Extension("first._ext", ["first/_ext.c"], include_dirs=["first/include"])],
)
"#;

pub const FIRST_INIT: &str = r#"import os
from ._ext import add
def get_include():
    return os.path.join(os.path.dirname(__file__), "include")
"#;

pub const FIRST_H: &str = "#define FIRST_MAGIC 40\n";

pub const FIRST_C: &str = r#"#include <Python.h>
#include "first.h"
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "add two ints"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_ext", NULL, -1, methods};
PyMODINIT_FUNC PyInit__ext(void) { return PyModule_Create(&mod); }
"#;

pub const SECOND_SETUP: &str = r#"import first
from setuptools import setup, Extension
setup(
    name="second",
    version="2.0.0",
    packages=["second"],
    install_requires=["first==1.0.0"],
    ext_modules=[Extension("second._magic", ["second/_magic.c"], include_dirs=[first.get_include()])],
)
"#;

pub const SECOND_C: &str = r#"#include <Python.h>
#include "first.h"
static PyObject *magic(PyObject *self, PyObject *args) { return PyLong_FromLong(FIRST_MAGIC + 2); }
static PyMethodDef methods[] = {{"magic", magic, METH_NOARGS, "the answer"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_magic", NULL, -1, methods};
PyMODINIT_FUNC PyInit__magic(void) { return PyModule_Create(&mod); }
"#;

pub const THIRD_SETUP: &str = r#"import os, pathlib
from setuptools import setup
src = pathlib.Path(os.environ["KERNELS_SRC"], "kernel.txt").read_text().strip()
pathlib.Path("third").mkdir(exist_ok=True)
pathlib.Path("third/__init__.py").write_text(f"KERNEL = {src!r}\n")
setup(name="third", version="3.0.0", packages=["third"], install_requires=["second==2.0.0"])
"#;

/// A patch for `first` (adds a comment to its header); `note` changes the patch's bytes.
pub fn first_patch(note: &str) -> String {
    format!(
        "Adds a note to first.h (fixture).\n--- a/first/include/first.h\n+++ b/first/include/first.h\n@@ -1 +1,2 @@\n #define FIRST_MAGIC 40\n+/* {note} */\n"
    )
}

pub const SOLO_SETUP: &str = "from setuptools import setup\nsetup(name=\"solo\", version=\"0.5.0\", py_modules=[\"solo\"])\n";

/// Recipes for the packages, building for the `host` target.
pub fn recipes() -> Vec<(String, String)> {
    let wheel_step = "python -m pip wheel --no-build-isolation --no-deps --no-index -w {out} .";
    vec![
        (
            "recipes/first.toml".into(),
            format!(
                "[package]\nname = \"first\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/first\"\n\
                 [[patch]]\nfile = \"first/0001-note.patch\"\n[jobs]\nmem_per_job_gib = 0.5\n[build]\nsteps = [\"{wheel_step}\"]\n\
                 [verify]\npython = \"import first; assert first.add(2, 3) == 5\"\n"
            ),
        ),
        (
            "recipes/second.toml".into(),
            format!(
                "[package]\nname = \"second\"\nversion = \"2.0.0\"\n[source]\npath = \"../src/second\"\n\
                 [depends]\nrecipes = [\"first\"]\n[build]\nsteps = [\"{wheel_step}\"]\n\
                 [verify]\npython = \"import second._magic as m; assert m.magic() == 42\"\n"
            ),
        ),
        (
            "recipes/solo.toml".into(),
            format!(
                "[package]\nname = \"solo\"\nversion = \"0.5.0\"\n[source]\npath = \"../src/solo\"\n\
                 [build]\nsteps = [\"{wheel_step}\"]\n"
            ),
        ),
        (
            "recipes/kernels.toml".into(),
            "[package]\nname = \"kernels\"\nversion = \"0.1.0\"\n[source]\npath = \"../src/kernels\"\n\
             [output]\nkind = \"source\"\n"
                .into(),
        ),
        (
            "recipes/third.toml".into(),
            format!(
                "[package]\nname = \"third\"\nversion = \"3.0.0\"\n[source]\npath = \"../src/third\"\n\
                 [depends]\nrecipes = [\"kernels\", \"second\"]\n[env]\nKERNELS_SRC = \"{{source_dir:kernels}}\"\n\
                 [build]\nsteps = [\"{wheel_step}\"]\n"
            ),
        ),
    ]
}

/// Writes the fixture sources and recipes; `second_pin` replaces `first==1.0.0` in second's
/// setup.py (to provoke a pin mismatch).
pub fn fixture_project(second_pin: &str) -> tempfile::TempDir {
    let second_setup = SECOND_SETUP.replace("first==1.0.0", second_pin);
    let mut files: Vec<(String, String)> = vec![
        ("src/first/setup.py".into(), FIRST_SETUP.into()),
        ("src/first/first/__init__.py".into(), FIRST_INIT.into()),
        ("src/first/first/include/first.h".into(), FIRST_H.into()),
        ("src/first/first/_ext.c".into(), FIRST_C.into()),
        ("src/second/setup.py".into(), second_setup),
        ("src/second/second/__init__.py".into(), String::new()),
        ("src/second/second/_magic.c".into(), SECOND_C.into()),
        (
            "src/kernels/kernel.txt".into(),
            "fast-attention-v1\n".into(),
        ),
        ("src/third/setup.py".into(), THIRD_SETUP.into()),
        ("src/solo/setup.py".into(), SOLO_SETUP.into()),
        ("src/solo/solo.py".into(), "ANSWER = 42\n".into()),
        (
            "patches/first/0001-note.patch".into(),
            first_patch("note 1"),
        ),
    ];
    files.extend(recipes());
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    tree(&refs)
}

/// The python that tests build with (the build venv sees its site-packages: no index needed).
pub fn python() -> String {
    which::which("python3")
        .expect("python3 on PATH")
        .display()
        .to_string()
}
