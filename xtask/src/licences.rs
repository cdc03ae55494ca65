//! `cargo xtask licences [--check]`: write (or check) the recipe's `LICENSE` and
//! `LIC_FILES_CHKSUM` from the crates the shipped binary links.
//!
//! The binary is the project's own code (Apache-2.0) statically linked with crates.io crates
//! under their own licences, so `LICENSE = "Apache-2.0"` alone would understate what an image
//! carries. The crate set comes from `cargo metadata --locked` resolved the way the recipe
//! builds: package `acpigate`, `--no-default-features` plus every applet in
//! `ACPIGATE_APPLETS_ALL`, for both BMC targets. From `acpigate` only normal dependencies are
//! followed: build-dependencies (build scripts) and proc-macro crates run on the build host
//! while compiling and are not linked into the binary, and dev-dependencies only build tests.
//!
//! Each crate's SPDX `license` expression is written in BitBake syntax (`OR` -> `|`,
//! `AND` -> `&`); `LICENSE` is the project's own licence `&` every distinct expression.
//! `LIC_FILES_CHKSUM` keeps the tree's own `LICENSE` file and adds oe-core's common licence
//! text for every licence name used, with the md5 from [`COMMON_LICENSES`].
//!
//! One limitation, which errs on the safe side: `cargo metadata` resolves features for the
//! whole workspace at once, so a feature that only a test crate turns on in a shared
//! dependency counts here too. An optional dependency it enables may then appear in
//! `LICENSE` without being linked; nothing linked can be missing.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{crates, cross, sh};

/// The package the recipe builds.
const PACKAGE: &str = "acpigate";

/// The licence of the project's own code (workspace Cargo.toml, the tree's `LICENSE` file).
const OWN_LICENCE: &str = "Apache-2.0";

/// The BMC targets the recipe is built for (AST2600, AST2500); the crate set is the union.
const BMC_TARGETS: [&str; 2] = [cross::ARMV7.triple, cross::ARMV6.triple];

/// md5 of oe-core's common licence texts (`meta/files/common-licenses/<NAME>`), as
/// `LIC_FILES_CHKSUM` needs them. Taken from openbmc/openbmc at
/// 8e3322f34f210d677bd97f98e11212ee9d7748cf, path
/// `upstream-layers/openembedded-core/meta/files/common-licenses/`, with
/// `git show <commit>:<path>/<NAME> | md5sum`. To add a licence: check that oe-core has a file
/// of exactly that name, compute its md5 the same way, and add the pair here (sorted).
pub const COMMON_LICENSES: &[(&str, &str)] = &[
    ("0BSD", "f667a3c3830a55a17ec3067709f4526c"),
    ("Apache-2.0", "89aea4e17d99a7cacdbeed46a0096b10"),
    (
        "Apache-2.0-with-LLVM-exception",
        "0bcd48c3bdfef0c9d9fd17726e4b7dab",
    ),
    ("BSD-2-Clause", "cb641bc04cda31daea161b1bc15da69f"),
    ("BSD-3-Clause", "550794465ba0ec5312d6919e203a55f9"),
    ("BSL-1.0", "65a7df9ad57aacf825fd252c4c33288c"),
    ("CC0-1.0", "0ceb3372c9595f0a8067e55da801e4a1"),
    ("ISC", "f3b90e78ea0cffb20bf5cca7947a896d"),
    ("MIT", "0835ade698e0bcf8506ecda2f7b4f302"),
    ("MIT-0", "f41b3a5f969eb450434cf0e4f33449b9"),
    ("MPL-2.0", "815ca599c9df247a0c7f619bab123dad"),
    ("Unicode-3.0", "548c7e11b6a9486e064814cf1c708e5b"),
    ("Unicode-DFS-2016", "907371994d651afe53e98adc27824669"),
    ("Unlicense", "7246f848faa4e9c9fc0ea91122d6e680"),
    ("Zlib", "87f239f408daca8a157858e192597633"),
];

/// The generated part of the recipe sits between these two lines; everything else in the
/// recipe is left as it is.
const BEGIN: &str =
    "# --- begin: written by `cargo xtask licences`; CI checks it. Do not edit. ---";
const END: &str = "# --- end: written by `cargo xtask licences` ---";

fn recipe_path() -> PathBuf {
    sh::root().join("yocto/meta-acpigate/recipes-phosphor/acpigate/acpigate_git.bb")
}

pub fn run(args: &[String]) -> Result<()> {
    let check = sh::only_flag(args, "--check", "cargo xtask licences [--check]")?;
    let applets = cross::recipe_applets_all()?;
    let meta = metadata(&applets)?;
    let linked = linked_crates(&meta, PACKAGE)?;
    let mut by_expr: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut exprs = Vec::new();
    for c in &linked {
        let Some(spdx) = &c.license else {
            bail!(
                "crate {} {} has no `license` field in its Cargo.toml (perhaps a `license-file`): \
                 find its licence by hand and decide whether the binary may link it",
                c.name,
                c.version
            );
        };
        let e = parse_spdx(spdx)
            .with_context(|| format!("crate {} {}: licence `{spdx}`", c.name, c.version))?;
        by_expr
            .entry(e.render_term())
            .or_default()
            .push(format!("{} {}", c.name, c.version));
        exprs.push(e);
    }
    let own = sh::root().join("LICENSE");
    let own_md5 = md5_of(&own)?;
    let want_block = block(&exprs, &own_md5)?;
    let path = recipe_path();
    let have =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let want = splice(&have, &want_block).with_context(|| format!("in {}", path.display()))?;
    if check {
        if have != want {
            bail!(
                "{}: LICENSE / LIC_FILES_CHKSUM do not match what the binary links ({}); run \
                 `cargo xtask licences` and commit the result",
                path.display(),
                crates::first_difference(&have, &want)
            );
        }
        eprintln!(
            "xtask licences: {} is up to date ({} linked crates, {} distinct licence expressions)",
            path.display(),
            linked.len(),
            by_expr.len()
        );
    } else {
        fs::write(&path, &want).with_context(|| format!("cannot write {}", path.display()))?;
        for (e, crates) in &by_expr {
            eprintln!("  {e:<40} {}", crates.join(", "));
        }
        eprintln!(
            "xtask licences: wrote LICENSE and LIC_FILES_CHKSUM of {} ({} linked crates)",
            path.display(),
            linked.len()
        );
    }
    Ok(())
}

/// `cargo metadata` resolved as the recipe builds: the acpigate package's applet features
/// only, for the BMC targets (one call with both platforms gives the union).
fn metadata(applets: &[String]) -> Result<Value> {
    let features: Vec<String> = applets.iter().map(|a| format!("{PACKAGE}/{a}")).collect();
    let mut c = sh::cargo();
    c.args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--no-default-features",
        "--features",
        &features.join(","),
    ]);
    for t in BMC_TARGETS {
        c.args(["--filter-platform", t]);
    }
    let out = sh::output(&mut c)?;
    serde_json::from_str(&out).context("cannot parse the output of `cargo metadata`")
}

/// A crate the binary links, as `cargo metadata` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

/// Every package reachable from the workspace member `root` over normal dependencies in the
/// metadata's resolve graph, minus proc-macro crates (which run inside the compiler), sorted
/// by name and version. The resolve's `deps` hold only the dependencies that the enabled
/// features and the filtered platforms activate, so disabled optional dependencies are
/// absent from it already. `root` itself is included.
pub fn linked_crates(meta: &Value, root: &str) -> Result<Vec<Linked>> {
    let packages = meta
        .get("packages")
        .and_then(Value::as_array)
        .context("cargo metadata: no `packages` array")?;
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for p in packages {
        let id = str_field(p, "id")?;
        by_id.insert(id, p);
    }
    let members = meta
        .get("workspace_members")
        .and_then(Value::as_array)
        .context("cargo metadata: no `workspace_members` array")?;
    let mut root_id = None;
    for m in members {
        let id = m
            .as_str()
            .context("cargo metadata: a workspace member id is not a string")?;
        let p = by_id
            .get(id)
            .with_context(|| format!("cargo metadata: workspace member {id} is not a package"))?;
        if str_field(p, "name")? == root {
            root_id = Some(id);
        }
    }
    let Some(root_id) = root_id else {
        bail!("cargo metadata: no workspace member named `{root}`");
    };
    let nodes = meta
        .get("resolve")
        .and_then(|r| r.get("nodes"))
        .and_then(Value::as_array)
        .context("cargo metadata: no `resolve.nodes` (was it run with --no-deps?)")?;
    let mut node_by_id: HashMap<&str, &Value> = HashMap::new();
    for n in nodes {
        node_by_id.insert(str_field(n, "id")?, n);
    }

    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue = VecDeque::from([root_id]);
    seen.insert(root_id);
    while let Some(id) = queue.pop_front() {
        let node = node_by_id
            .get(id)
            .with_context(|| format!("cargo metadata: {id} has no resolve node"))?;
        let deps = node
            .get("deps")
            .and_then(Value::as_array)
            .with_context(|| format!("cargo metadata: resolve node {id} has no `deps`"))?;
        for d in deps {
            let pkg = str_field(d, "pkg")?;
            if seen.contains(pkg) || !is_normal(d)? {
                continue;
            }
            let p = by_id
                .get(pkg)
                .with_context(|| format!("cargo metadata: dependency {pkg} is not a package"))?;
            if is_proc_macro(p) {
                continue;
            }
            seen.insert(pkg);
            queue.push_back(pkg);
        }
    }

    let mut out = Vec::new();
    for id in seen {
        let p = by_id
            .get(id)
            .with_context(|| format!("cargo metadata: {id} is not a package"))?;
        out.push(Linked {
            name: str_field(p, "name")?.to_string(),
            version: str_field(p, "version")?.to_string(),
            license: p.get("license").and_then(Value::as_str).map(str::to_string),
        });
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(out)
}

/// Whether a resolve edge is (also) a normal dependency: a `dep_kinds` entry with kind null.
/// A crate that is both a build- and a normal dependency is linked.
fn is_normal(dep: &Value) -> Result<bool> {
    let kinds = dep.get("dep_kinds").and_then(Value::as_array).context(
        "cargo metadata: a resolve dependency has no `dep_kinds` (cargo older than 1.41?)",
    )?;
    Ok(kinds
        .iter()
        .any(|k| k.get("kind").is_some_and(Value::is_null)))
}

/// A proc-macro crate: its library target has the kind `proc-macro`.
fn is_proc_macro(p: &Value) -> bool {
    p.get("targets")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter().any(|t| {
                t.get("kind")
                    .and_then(Value::as_array)
                    .is_some_and(|ks| ks.iter().any(|k| k.as_str() == Some("proc-macro")))
            })
        })
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("cargo metadata: an entry has no string `{key}`"))
}

/// A licence expression: a name, or the AND / OR of two or more expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Name(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// Join operands: nested operations of the same kind are flattened and the operands
    /// sorted and deduplicated (`A OR (B OR A)` is `A | B`), so that the same licence choice
    /// written in another order by another crate is one entry, not two.
    fn join(and: bool, operands: Vec<Expr>) -> Expr {
        let mut flat = Vec::new();
        for e in operands {
            match (and, e) {
                (true, Expr::And(v)) | (false, Expr::Or(v)) => flat.extend(v),
                (_, e) => flat.push(e),
            }
        }
        flat.sort_by_key(Expr::render_term);
        flat.dedup();
        match (flat.len(), and) {
            (1, _) => flat.remove(0),
            (_, true) => Expr::And(flat),
            (_, false) => Expr::Or(flat),
        }
    }

    /// BitBake syntax, with parentheses around any compound expression, so that the result
    /// can stand as one operand of `&` (BitBake's own operator precedence is not something a
    /// reader should have to know).
    pub fn render_term(&self) -> String {
        match self {
            Expr::Name(n) => n.clone(),
            Expr::And(v) => format!("({})", Self::render_list(v, " & ")),
            Expr::Or(v) => format!("({})", Self::render_list(v, " | ")),
        }
    }

    fn render_list(v: &[Expr], sep: &str) -> String {
        v.iter()
            .map(Expr::render_term)
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Every licence name in the expression.
    pub fn names<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Expr::Name(n) => {
                out.insert(n.as_str());
            }
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.names(out)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    With,
    Id(String),
}

fn tokenize(s: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(match word.as_str() {
                "AND" => Token::And,
                "OR" => Token::Or,
                "WITH" => Token::With,
                _ => Token::Id(std::mem::take(word)),
            });
            word.clear();
        }
    };
    for c in s.chars() {
        match c {
            '(' | ')' | '/' => {
                flush(&mut word, &mut out);
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    // The old crates.io form `MIT/Apache-2.0` means either.
                    _ => Token::Or,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            // SPDX idstring characters, `+` for "or later"; `:` for DocumentRef-…:LicenseRef-….
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | ':') => word.push(c),
            other => bail!("unexpected character `{other}`"),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

/// Parse an SPDX licence expression (AND binds tighter than OR, as SPDX defines; `/` is the
/// old crates.io spelling of OR). `X WITH E` becomes the name `X-with-E`, which is how
/// oe-core names licence-plus-exception texts (e.g. `Apache-2.0-with-LLVM-exception`).
pub fn parse_spdx(s: &str) -> Result<Expr> {
    let tokens = tokenize(s)?;
    if tokens.is_empty() {
        bail!("empty licence expression");
    }
    let mut p = Parser { tokens, pos: 0 };
    let e = p.or_expr()?;
    if let Some(t) = p.tokens.get(p.pos) {
        bail!("unexpected {} after a complete expression", describe(t));
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

fn describe(t: &Token) -> String {
    match t {
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::And => "`AND`".into(),
        Token::Or => "`OR`".into(),
        Token::With => "`WITH`".into(),
        Token::Id(s) => format!("`{s}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or_expr(&mut self) -> Result<Expr> {
        let mut v = vec![self.and_expr()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            v.push(self.and_expr()?);
        }
        Ok(Expr::join(false, v))
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let mut v = vec![self.atom()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            v.push(self.atom()?);
        }
        Ok(Expr::join(true, v))
    }

    fn atom(&mut self) -> Result<Expr> {
        match self.bump() {
            Some(Token::Open) => {
                let e = self.or_expr()?;
                match self.bump() {
                    Some(Token::Close) => Ok(e),
                    Some(t) => bail!("expected `)`, found {}", describe(&t)),
                    None => bail!("missing `)`"),
                }
            }
            Some(Token::Id(name)) => {
                if self.peek() == Some(&Token::With) {
                    self.pos += 1;
                    match self.bump() {
                        Some(Token::Id(exception)) => {
                            Ok(Expr::Name(format!("{name}-with-{exception}")))
                        }
                        Some(t) => {
                            bail!("expected an exception after `WITH`, found {}", describe(&t))
                        }
                        None => bail!("expected an exception after `WITH`"),
                    }
                } else {
                    Ok(Expr::Name(name))
                }
            }
            Some(t) => bail!("expected a licence name or `(`, found {}", describe(&t)),
            None => bail!("expression ends where a licence name was expected"),
        }
    }
}

/// The md5 of oe-core's text for licence `name`, or an error saying what to add.
fn common_md5(name: &str) -> Result<&'static str> {
    match COMMON_LICENSES.iter().find(|(n, _)| *n == name) {
        Some((_, md5)) => Ok(md5),
        None => bail!(
            "licence `{name}` is not in xtask's COMMON_LICENSES table (xtask/src/licences.rs): \
             check that oe-core's meta/files/common-licenses/ has a file named `{name}` (if it \
             has not, BitBake cannot use the name either: a crate with this licence needs a \
             LIC_FILES_CHKSUM entry for its own licence file), then add its md5 as the comment \
             above the table says"
        ),
    }
}

/// The generated block: a comment, `LICENSE` and `LIC_FILES_CHKSUM`, one entry per line.
pub fn block(exprs: &[Expr], own_md5: &str) -> Result<String> {
    let mut terms: BTreeSet<String> = exprs.iter().map(Expr::render_term).collect();
    // The project's own licence leads; a crate under exactly that licence adds nothing.
    terms.remove(OWN_LICENCE);
    let mut license = vec![OWN_LICENCE.to_string()];
    license.extend(terms);

    let mut names: BTreeSet<&str> = BTreeSet::new();
    names.insert(OWN_LICENCE);
    for e in exprs {
        e.names(&mut names);
    }
    let mut chksum = vec![format!("file://LICENSE;md5={own_md5}")];
    for n in names {
        chksum.push(format!(
            "file://${{COMMON_LICENSE_DIR}}/{n};md5={}",
            common_md5(n)?
        ));
    }

    let mut out = String::new();
    out.push_str(BEGIN);
    out.push('\n');
    out.push_str(
        "# The binary is our code (Apache-2.0, the tree's LICENSE) statically linked with the\n\
         # crates.io crates it depends on: each crate's licence expression (SPDX from its\n\
         # Cargo.toml, here in BitBake syntax) is one term. Build-dependencies and proc-macro\n\
         # crates only run on the build host while compiling, so they are not listed.\n",
    );
    out.push_str(&multiline("LICENSE", &license, " &"));
    // The crates' own licence files sit in their crate archives, one directory per crate
    // version, which changes with every lock update; oe-core's common texts of the same
    // licences are stable and are what BitBake checks licence names against anyway.
    out.push_str(
        "# Our LICENSE file, then oe-core's text of each licence named above (the crates' own\n\
         # copies are in their crate archives).\n",
    );
    out.push_str(&multiline("LIC_FILES_CHKSUM", &chksum, ""));
    out.push_str(END);
    out.push('\n');
    Ok(out)
}

/// `VAR = "a<sep> \` + one item per line, aligned under the first.
fn multiline(var: &str, items: &[String], sep: &str) -> String {
    let head = format!("{var} = \"");
    let indent = " ".repeat(head.len());
    let mut s = head;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(&indent);
        }
        s.push_str(item);
        if i + 1 < items.len() {
            s.push_str(sep);
            s.push_str(" \\\n");
        }
    }
    s.push_str("\"\n");
    s
}

/// The recipe with its generated block replaced by `block`. The block must be there once.
pub fn splice(recipe: &str, block: &str) -> Result<String> {
    let begin = recipe.find(BEGIN);
    let end = recipe.find(END);
    let (Some(b), Some(e)) = (begin, end) else {
        bail!(
            "no generated licence block (`{BEGIN}` … `{END}`): put those two lines where LICENSE goes"
        );
    };
    if e < b || recipe[b + BEGIN.len()..].contains(BEGIN) || recipe[e + END.len()..].contains(END) {
        bail!("the generated licence block markers are out of order or repeated");
    }
    let after = &recipe[e + END.len()..];
    let after = after.strip_prefix('\n').unwrap_or(after);
    let outside = format!("{}{}", &recipe[..b], after);
    let sets = |l: &str, var: &str| {
        l.strip_prefix(var)
            .is_some_and(|rest| rest.starts_with([' ', '=', ':', '?', '+', '.']))
    };
    if outside
        .lines()
        .any(|l| sets(l, "LICENSE") || sets(l, "LIC_FILES_CHKSUM"))
    {
        bail!("LICENSE or LIC_FILES_CHKSUM is also set outside the generated block");
    }
    Ok(format!("{}{block}{after}", &recipe[..b]))
}

/// md5 of a file, by coreutils' md5sum (xtask carries no hash crate for one digest).
fn md5_of(path: &Path) -> Result<String> {
    let out = sh::output(Command::new("md5sum").arg(path))?;
    match out.split_whitespace().next() {
        Some(h) if h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()) => Ok(h.to_string()),
        _ => bail!("md5sum printed `{}` for {}", out.trim(), path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bb(s: &str) -> String {
        parse_spdx(s).expect(s).render_term()
    }

    #[test]
    fn spdx_becomes_bitbake() {
        assert_eq!(bb("MIT"), "MIT");
        assert_eq!(bb("MIT OR Apache-2.0"), "(Apache-2.0 | MIT)");
        assert_eq!(bb("Apache-2.0 OR MIT"), "(Apache-2.0 | MIT)");
        assert_eq!(bb("MIT/Apache-2.0"), "(Apache-2.0 | MIT)");
        assert_eq!(bb("Unlicense OR MIT"), "(MIT | Unlicense)");
        // AND binds tighter than OR.
        assert_eq!(
            bb("MIT OR Apache-2.0 AND BSD-3-Clause"),
            "((Apache-2.0 & BSD-3-Clause) | MIT)"
        );
        assert_eq!(
            bb("(MIT OR Apache-2.0) AND Unicode-3.0"),
            "((Apache-2.0 | MIT) & Unicode-3.0)"
        );
        assert_eq!(
            bb("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"),
            "(Apache-2.0 | Apache-2.0-with-LLVM-exception | MIT)"
        );
        assert_eq!(bb("(MIT)"), "MIT");
        assert_eq!(bb("MIT OR (Apache-2.0 OR MIT)"), "(Apache-2.0 | MIT)");
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in [
            "",
            "MIT OR",
            "OR MIT",
            "MIT Apache-2.0",
            "(MIT OR Apache-2.0",
            "MIT OR Apache-2.0)",
            "MIT and Apache-2.0",
            "MIT, Apache-2.0",
            "MIT WITH",
            "()",
        ] {
            assert!(parse_spdx(bad).is_err(), "`{bad}` parsed");
        }
    }

    /// A hand-written `cargo metadata` with every kind of edge that must not count.
    const META: &str = r#"{
      "workspace_members": ["path+file:///w/app#0.1.0", "path+file:///w/tool#0.1.0"],
      "packages": [
        {"id": "path+file:///w/app#0.1.0", "name": "app", "version": "0.1.0",
         "license": "Apache-2.0", "targets": [{"kind": ["bin"]}]},
        {"id": "path+file:///w/tool#0.1.0", "name": "tool", "version": "0.1.0",
         "license": "GPL-3.0-only", "targets": [{"kind": ["bin"]}]},
        {"id": "r#lib@1.0.0", "name": "lib", "version": "1.0.0",
         "license": "MIT OR Apache-2.0", "targets": [{"kind": ["lib"]}],
         "dependencies": [{"name": "optional", "kind": null, "optional": true}]},
        {"id": "r#both@1.0.0", "name": "both", "version": "1.0.0",
         "license": "Zlib", "targets": [{"kind": ["lib"]}]},
        {"id": "r#deep@1.0.0", "name": "deep", "version": "1.0.0",
         "license": "Unlicense/MIT", "targets": [{"kind": ["lib"]}]},
        {"id": "r#devonly@1.0.0", "name": "devonly", "version": "1.0.0",
         "license": "BSL-1.0", "targets": [{"kind": ["lib"]}]},
        {"id": "r#buildonly@1.0.0", "name": "buildonly", "version": "1.0.0",
         "license": "ISC", "targets": [{"kind": ["lib"]}]},
        {"id": "r#derive@1.0.0", "name": "derive", "version": "1.0.0",
         "license": "0BSD", "targets": [{"kind": ["proc-macro"]}]},
        {"id": "r#under-derive@1.0.0", "name": "under-derive", "version": "1.0.0",
         "license": "CC0-1.0", "targets": [{"kind": ["lib"]}]},
        {"id": "r#optional@1.0.0", "name": "optional", "version": "1.0.0",
         "license": "MPL-2.0", "targets": [{"kind": ["lib"]}]}
      ],
      "resolve": {"root": null, "nodes": [
        {"id": "path+file:///w/app#0.1.0", "features": [], "deps": [
          {"name": "lib", "pkg": "r#lib@1.0.0", "dep_kinds": [{"kind": null, "target": null}]},
          {"name": "both", "pkg": "r#both@1.0.0",
           "dep_kinds": [{"kind": "build", "target": null}, {"kind": null, "target": null}]},
          {"name": "devonly", "pkg": "r#devonly@1.0.0", "dep_kinds": [{"kind": "dev", "target": null}]},
          {"name": "buildonly", "pkg": "r#buildonly@1.0.0", "dep_kinds": [{"kind": "build", "target": null}]},
          {"name": "derive", "pkg": "r#derive@1.0.0", "dep_kinds": [{"kind": null, "target": null}]}
        ]},
        {"id": "path+file:///w/tool#0.1.0", "features": [], "deps": [
          {"name": "optional", "pkg": "r#optional@1.0.0", "dep_kinds": [{"kind": null, "target": null}]}
        ]},
        {"id": "r#lib@1.0.0", "features": ["default"], "deps": [
          {"name": "deep", "pkg": "r#deep@1.0.0", "dep_kinds": [{"kind": null, "target": null}]}
        ]},
        {"id": "r#both@1.0.0", "features": [], "deps": []},
        {"id": "r#deep@1.0.0", "features": [], "deps": []},
        {"id": "r#devonly@1.0.0", "features": [], "deps": []},
        {"id": "r#buildonly@1.0.0", "features": [], "deps": []},
        {"id": "r#derive@1.0.0", "features": [], "deps": [
          {"name": "under_derive", "pkg": "r#under-derive@1.0.0", "dep_kinds": [{"kind": null, "target": null}]}
        ]},
        {"id": "r#under-derive@1.0.0", "features": [], "deps": []},
        {"id": "r#optional@1.0.0", "features": [], "deps": []}
      ]}
    }"#;

    #[test]
    fn walk_keeps_only_what_is_linked() {
        let meta: Value = serde_json::from_str(META).expect("test JSON");
        let got = linked_crates(&meta, "app").expect("walk");
        let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
        // `optional` is an optional dependency of `lib` whose feature is off, so `lib`'s
        // resolve node does not list it (only `tool`, another member, uses it). `devonly`,
        // `buildonly` and the proc-macro `derive` (with what it depends on) are not linked;
        // `both` is a build- and a normal dependency, so it is.
        assert_eq!(names, ["app", "both", "deep", "lib"]);
        let exprs: Vec<Expr> = got
            .iter()
            .map(|c| parse_spdx(c.license.as_deref().expect("licence")).expect("parses"))
            .collect();
        let b = block(&exprs, "0123456789abcdef0123456789abcdef").expect("block");
        assert!(b.contains(
            "LICENSE = \"Apache-2.0 & \\\n           (Apache-2.0 | MIT) & \\\n           \
             (MIT | Unlicense) & \\\n           Zlib\"\n"
        ));
        assert!(b.contains(
            "LIC_FILES_CHKSUM = \"file://LICENSE;md5=0123456789abcdef0123456789abcdef \\\n"
        ));
        for n in ["Apache-2.0", "MIT", "Unlicense", "Zlib"] {
            assert!(
                b.contains(&format!("file://${{COMMON_LICENSE_DIR}}/{n};md5=")),
                "{n}"
            );
        }
        assert!(!b.contains("ISC") && !b.contains("BSL") && !b.contains("0BSD"));
    }

    #[test]
    fn missing_root_or_unknown_licence_is_an_error() {
        let meta: Value = serde_json::from_str(META).expect("test JSON");
        assert!(linked_crates(&meta, "nosuch").is_err());
        let e = parse_spdx("GPL-3.0-only").expect("parses");
        let err = format!("{:#}", block(&[e], "x").expect_err("not in the table"));
        assert!(
            err.contains("GPL-3.0-only") && err.contains("COMMON_LICENSES"),
            "{err}"
        );
    }

    #[test]
    fn table_is_sorted_and_well_formed() {
        for w in COMMON_LICENSES.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (n, md5) in COMMON_LICENSES {
            assert!(
                md5.len() == 32 && md5.chars().all(|c| c.is_ascii_hexdigit()),
                "{n}"
            );
        }
    }

    #[test]
    fn splice_replaces_only_the_block() {
        let recipe = format!("A = \"1\"\n{BEGIN}\nLICENSE = \"old\"\n{END}\nB = \"2\"\n");
        let new = splice(&recipe, &format!("{BEGIN}\nLICENSE = \"new\"\n{END}\n")).expect("ok");
        assert_eq!(
            new,
            format!("A = \"1\"\n{BEGIN}\nLICENSE = \"new\"\n{END}\nB = \"2\"\n")
        );
        assert!(splice("LICENSE = \"x\"\n", "").is_err());
        let twice = format!("{BEGIN}\n{END}\nLICENSE = \"x\"\n");
        assert!(splice(&twice, &format!("{BEGIN}\n{END}\n")).is_err());
    }
}
