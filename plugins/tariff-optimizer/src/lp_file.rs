//! The model as a file any solver reads: CPLEX LP ([`to_lp`]) and free MPS
//! ([`to_mps`]), written from the same [`LinearModel`] the plugin solves,
//! so the objective an independent solver finds is the plugin's.
//!
//! LP: sections `Minimize` / `Subject To` / `Bounds` / `General` /
//! `Binary` / `End` (GLPK's CPLEX-LP reader, glpk09), names of ASCII
//! letters, digits and `_` never starting with a digit or `e`/`E`
//! ([`crate::model::valid_name`]), lines under 255 characters, numbers in
//! Rust's shortest round-trip form (`{:?}`, exponent only for very large
//! or small values), so every coefficient reads back bit for bit.
//! Variables default to `[0, +inf)`; other bounds are written. A binary
//! whose bounds fix it (forced on) is written as a `General` integer with
//! its bounds.
//!
//! The objective has no constant term: [`LinearModel::offset`] is 0 for
//! every model [`crate::model::build`] makes. Were it not, it is written
//! as the objective coefficient of `const_one`, a variable fixed at 1.

use std::fmt::Write;

use crate::model::{Cmp, LinearModel, VarKind};

const WRAP: usize = 200;

fn num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// Appends `+ c name` terms, wrapping lines.
fn terms(out: &mut String, line: &mut String, items: impl Iterator<Item = (f64, String)>) {
    let mut first = true;
    for (c, name) in items {
        let sign = if c < 0.0 { "-" } else { "+" };
        let a = c.abs();
        let tok = if a == 1.0 {
            format!("{sign} {name}")
        } else {
            format!("{sign} {} {name}", num(a))
        };
        let tok = if first && c >= 0.0 {
            tok[2..].to_string()
        } else {
            tok
        };
        first = false;
        if line.len() + tok.len() + 1 > WRAP {
            out.push_str(line.trim_end());
            out.push('\n');
            line.clear();
            line.push_str("   ");
        }
        line.push(' ');
        line.push_str(&tok);
    }
}

/// The model in CPLEX LP format.
pub fn to_lp(m: &LinearModel) -> String {
    let mut out = String::new();
    out.push_str(
        "\\ Hearth tariff optimizer: the plan as a MILP (objective in the plan's units)\n",
    );
    for c in &m.comments {
        let _ = writeln!(out, "\\ {c}");
    }
    out.push_str("Minimize\n");
    let mut line = String::from(" obj:");
    let mut obj: Vec<(f64, String)> = m
        .vars
        .iter()
        .filter(|v| v.obj != 0.0)
        .map(|v| (v.obj, v.name.clone()))
        .collect();
    if m.offset != 0.0 {
        obj.push((m.offset, "const_one".into()));
    }
    if obj.is_empty()
        && let Some(v) = m.vars.first()
    {
        obj.push((0.0, v.name.clone()));
    }
    terms(&mut out, &mut line, obj.into_iter());
    out.push_str(line.trim_end());
    out.push('\n');
    out.push_str("Subject To\n");
    for r in &m.rows {
        if r.terms.is_empty() {
            continue;
        }
        let mut line = format!(" {}:", r.name);
        terms(
            &mut out,
            &mut line,
            r.terms.iter().map(|&(v, c)| (c, m.vars[v].name.clone())),
        );
        let op = match r.cmp {
            Cmp::Le => "<=",
            Cmp::Ge => ">=",
            Cmp::Eq => "=",
        };
        let tail = format!(" {op} {}", num(r.rhs));
        if line.len() + tail.len() > WRAP {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from("  ");
        }
        line.push_str(&tail);
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("Bounds\n");
    let mut general = Vec::new();
    let mut binary = Vec::new();
    for v in &m.vars {
        let is_bin = v.kind == VarKind::Binary && v.lo == 0.0 && v.hi == 1.0;
        match v.kind {
            VarKind::Binary if is_bin => binary.push(v.name.as_str()),
            VarKind::Continuous => {}
            _ => general.push(v.name.as_str()),
        }
        if is_bin {
            continue;
        }
        let (lo, hi) = (v.lo, v.hi);
        let name = &v.name;
        if lo == hi {
            let _ = writeln!(out, " {name} = {}", num(lo));
        } else if lo == f64::NEG_INFINITY && hi == f64::INFINITY {
            let _ = writeln!(out, " {name} free");
        } else if lo == f64::NEG_INFINITY {
            let _ = writeln!(out, " -inf <= {name} <= {}", num(hi));
        } else if hi == f64::INFINITY {
            if lo != 0.0 {
                let _ = writeln!(out, " {name} >= {}", num(lo));
            }
        } else {
            let _ = writeln!(out, " {} <= {name} <= {}", num(lo), num(hi));
        }
    }
    if m.offset != 0.0 {
        out.push_str(" const_one = 1\n");
    }
    for (title, names) in [("General", general), ("Binary", binary)] {
        if names.is_empty() {
            continue;
        }
        out.push_str(title);
        out.push('\n');
        let mut line = String::new();
        for n in names {
            if line.len() + n.len() + 1 > WRAP {
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            line.push(' ');
            line.push_str(n);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("End\n");
    out
}

/// The model in free MPS format (rows `N obj`, `E`/`L`/`G`; integers
/// between `MARKER INTORG/INTEND` with explicit bounds, binaries `BV`).
pub fn to_mps(m: &LinearModel) -> String {
    let mut out = String::new();
    out.push_str("* Hearth tariff optimizer: the plan as a MILP (objective in the plan's units)\n");
    for c in &m.comments {
        let _ = writeln!(out, "* {c}");
    }
    out.push_str("NAME hearth_plan\nROWS\n N obj\n");
    for r in &m.rows {
        let t = match r.cmp {
            Cmp::Le => "L",
            Cmp::Ge => "G",
            Cmp::Eq => "E",
        };
        let _ = writeln!(out, " {t} {}", r.name);
    }
    // Column-wise entries.
    let mut cols: Vec<Vec<(usize, f64)>> = vec![Vec::new(); m.vars.len()];
    for (ri, r) in m.rows.iter().enumerate() {
        for &(v, c) in &r.terms {
            cols[v].push((ri, c));
        }
    }
    out.push_str("COLUMNS\n");
    let mut in_int = false;
    let mut marker = 0;
    for (vi, v) in m.vars.iter().enumerate() {
        let int = v.kind != VarKind::Continuous;
        if int != in_int {
            let kind = if int { "INTORG" } else { "INTEND" };
            let _ = writeln!(out, " M{marker} 'MARKER' '{kind}'");
            marker += 1;
            in_int = int;
        }
        let mut any = false;
        if v.obj != 0.0 {
            let _ = writeln!(out, " {} obj {}", v.name, num(v.obj));
            any = true;
        }
        for &(ri, c) in &cols[vi] {
            let _ = writeln!(out, " {} {} {}", v.name, m.rows[ri].name, num(c));
            any = true;
        }
        if !any {
            let _ = writeln!(out, " {} obj 0", v.name);
        }
    }
    if in_int {
        let _ = writeln!(out, " M{marker} 'MARKER' 'INTEND'");
    }
    if m.offset != 0.0 {
        let _ = writeln!(out, " const_one obj {}", num(m.offset));
    }
    out.push_str("RHS\n");
    for r in &m.rows {
        if r.rhs != 0.0 {
            let _ = writeln!(out, " RHS {} {}", r.name, num(r.rhs));
        }
    }
    out.push_str("BOUNDS\n");
    for v in &m.vars {
        let name = &v.name;
        if v.kind == VarKind::Binary && v.lo == 0.0 && v.hi == 1.0 {
            let _ = writeln!(out, " BV BND {name}");
            continue;
        }
        let int = v.kind != VarKind::Continuous;
        if v.lo == v.hi {
            let _ = writeln!(out, " FX BND {name} {}", num(v.lo));
            continue;
        }
        if v.lo == f64::NEG_INFINITY && v.hi == f64::INFINITY {
            let _ = writeln!(out, " FR BND {name}");
            continue;
        }
        if v.lo == f64::NEG_INFINITY {
            let _ = writeln!(out, " MI BND {name}");
        } else if v.lo != 0.0 || int {
            let _ = writeln!(out, " LO BND {name} {}", num(v.lo));
        }
        if v.hi != f64::INFINITY {
            let _ = writeln!(out, " UP BND {name} {}", num(v.hi));
        } else if int {
            let _ = writeln!(out, " PL BND {name}");
        }
    }
    if m.offset != 0.0 {
        out.push_str(" FX BND const_one 1\n");
    }
    out.push_str("ENDATA\n");
    out
}
