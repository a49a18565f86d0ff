//! `hearth plan` through the real binary: the tariff optimizer's problem
//! at an instant of a solar-house scenario, exported as CPLEX LP and free
//! MPS, solved by an independent solver (GLPK's `glpsol`, Debian's
//! `glpk-utils`, installed by `.ci/run`): its optimum must equal the
//! plugin's `objective:` line within 0.1 %.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hearth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("hearth runs")
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// `glpsol`, or `None` outside CI when it is not installed (CI must have it).
fn glpsol() -> Option<&'static str> {
    let found = Command::new("glpsol").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "glpsol (apt-get install glpk-utils) is required on CI"
        );
        eprintln!("SKIPPED: glpsol is not installed (apt-get install glpk-utils)");
        return None;
    }
    Some("glpsol")
}

/// GLPK's optimum of a model file (`--lp` or `--freemps`).
fn glpk_objective(format: &str, file: &Path, dir: &Path) -> f64 {
    let out_file = dir.join(format!("glpk{format}.txt"));
    let status = Command::new("glpsol")
        .args([format, &file.display().to_string(), "--tmlim", "120", "-o"])
        .arg(&out_file)
        .output()
        .expect("glpsol runs");
    assert!(
        status.status.success(),
        "glpsol {format} failed: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    let report = std::fs::read_to_string(&out_file).unwrap();
    // `Status:     INTEGER OPTIMAL` (not `INTEGER NON-OPTIMAL`, which a
    // substring test for `OPTIMAL` would accept).
    let status = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Status:"))
        .map(str::trim);
    assert_eq!(
        status,
        Some("INTEGER OPTIMAL"),
        "GLPK did not prove optimality:\n{report}"
    );
    let line = report
        .lines()
        .find(|l| l.starts_with("Objective:"))
        .unwrap_or_else(|| panic!("no Objective line in\n{report}"));
    // `Objective:  obj = -0.4661424648 (MINimum)`
    line.split('=')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"))
}

fn plan_and_check(file: &str, at: &str, min_loads: usize) {
    let Some(_) = glpsol() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lp: PathBuf = dir.path().join("plan.lp");
    let mps: PathBuf = dir.path().join("plan.mps");
    let out = hearth(&[
        "plan",
        "--scenario",
        &scenario(file),
        "--at",
        at,
        "--export-lp",
        &lp.display().to_string(),
        "--export-mps",
        &mps.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hearth plan failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("status Optimal"), "{stdout}");
    let loads = stdout
        .split_once(" loads")
        .and_then(|(a, _)| a.rsplit(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        loads >= min_loads,
        "the plan at {at} has {loads} loads, expected at least {min_loads}:\n{stdout}"
    );
    let ours: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("objective: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `objective: <value>` line in\n{stdout}"));
    let text = std::fs::read_to_string(&lp).unwrap();
    assert!(
        text.contains("Subject To") && text.contains("Binary"),
        "not a MILP in CPLEX LP format:\n{}",
        &text[..text.len().min(400)]
    );
    for (format, file) in [("--lp", &lp), ("--freemps", &mps)] {
        let glpk = glpk_objective(format, file, dir.path());
        let tol = 1e-3 * glpk.abs().max(1e-2);
        assert!(
            (ours - glpk).abs() <= tol,
            "{file:?} ({format}): GLPK {glpk} vs the plugin's {ours} (more than 0.1 % apart)"
        );
        eprintln!(
            "{} at {at} ({format}): plugin {ours:.9}, GLPK {glpk:.9}",
            file.display()
        );
    }
}

#[test]
fn the_exported_lp_of_a_sunny_evening_solves_to_the_plugins_objective() {
    // 19:00: the machines ran on the midday sun; the EV has arrived and
    // the tank waits for the morning: a battery and a thermal load.
    plan_and_check("solar-house-sunny.toml", "2026-06-16T19:00:00+02:00", 2);
}

#[test]
fn the_exported_lp_of_a_red_day_morning_solves_to_the_plugins_objective() {
    // 08:00: the washing machine is loaded (a sequence load with start
    // binaries) and the tank must be ready by the evening.
    plan_and_check("solar-house-red-day.toml", "2026-01-13T08:00:00+01:00", 2);
}

#[test]
fn an_instant_outside_the_scenario_is_refused_by_name() {
    let out = hearth(&[
        "plan",
        "--scenario",
        &scenario("solar-house-sunny.toml"),
        "--at",
        "2027-01-01T00:00:00Z",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--at") && err.contains("outside the scenario's period"),
        "{err}"
    );
}

#[test]
fn an_off_grid_instant_reads_the_last_replan_at_or_before_it() {
    // 18:59:30 is inside the 18:59 step (60 s grid from 08:00); the run
    // must not reach the 19:00 step, whose re-plan is after --at.
    let at = "2026-06-16T18:59:30+02:00";
    let out = hearth(&[
        "plan",
        "--scenario",
        &scenario("solar-house-sunny.toml"),
        "--at",
        at,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hearth plan failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `plan of tariff-optimizer at <planned_at>: …`
    let planned = stdout
        .lines()
        .find_map(|l| l.strip_prefix("plan of "))
        .and_then(|l| l.split_once(" at "))
        .and_then(|(_, r)| r.split_once(": "))
        .map(|(t, _)| t.to_string())
        .unwrap_or_else(|| panic!("no `plan of … at <time>:` line in\n{stdout}"));
    let planned: jiff::Timestamp = planned
        .parse()
        .unwrap_or_else(|e| panic!("{planned:?} is not RFC 3339: {e}"));
    let at_ts: jiff::Timestamp = at.parse().unwrap();
    assert!(planned <= at_ts, "planned at {planned}, after --at {at_ts}");
    // The re-plans are every 5 min from 08:00 (replan_s = 300): 18:55.
    assert!(
        at_ts.as_second() - planned.as_second() < 300,
        "planned at {planned}, more than a re-plan period before --at {at_ts}"
    );
}
