//! Sets of cores a scenario's role runs on (`--proxy-cpus 1-4`,
//! `--load-cpus 0,5`), in taskset's list syntax. A role gets as many workers
//! or threads as its set has cores: one proxy worker per proxy core, one
//! harness thread (and one wrk thread) per load core, one upstream thread per
//! upstream core. The default, one core each, compares single workers.

use std::fmt;
use std::str::FromStr;

/// Largest core number accepted (a typo guard, not a machine limit).
const MAX_CPU: usize = 4095;

/// A non-empty, sorted set of core numbers without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// How many cores: the number of workers or threads the role gets.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The cores, ascending.
    pub fn cores(&self) -> &[usize] {
        &self.0
    }

    /// Whether the two sets share a core.
    pub fn overlaps(&self, other: &CpuList) -> bool {
        self.0.iter().any(|c| other.0.contains(c))
    }
}

impl FromStr for CpuList {
    type Err = String;

    /// Parses `3`, `0-3`, `0,2,5-7` (what `taskset -c` takes).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut cores = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (low, high) = match part.split_once('-') {
                Some((low, high)) => (parse_core(low, text)?, parse_core(high, text)?),
                None => {
                    let core = parse_core(part, text)?;
                    (core, core)
                }
            };
            if low > high {
                return Err(format!("{text:?}: range {part:?} runs backwards"));
            }
            cores.extend(low..=high);
        }
        cores.sort_unstable();
        cores.dedup();
        Ok(CpuList(cores))
    }
}

fn parse_core(text: &str, whole: &str) -> Result<usize, String> {
    let core: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{whole:?}: expected core numbers like 3, 0-3 or 0,2,5-7"))?;
    if core > MAX_CPU {
        return Err(format!("{whole:?}: core {core} is above {MAX_CPU}"));
    }
    Ok(core)
}

/// Canonical taskset form: `0-3,6`.
impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CpuList, String> {
        text.parse()
    }

    #[test]
    fn single_cores_ranges_and_lists() {
        assert_eq!(parse("3").unwrap().cores(), &[3]);
        assert_eq!(parse("0-3").unwrap().cores(), &[0, 1, 2, 3]);
        assert_eq!(parse("5-7,0,2").unwrap().cores(), &[0, 2, 5, 6, 7]);
        assert_eq!(parse(" 1 , 1-2 ").unwrap().cores(), &[1, 2]);
        assert_eq!(parse("0-3").unwrap().count(), 4);
    }

    #[test]
    fn prints_in_taskset_form() {
        assert_eq!(parse("6,0-3").unwrap().to_string(), "0-3,6");
        assert_eq!(parse("1,3,5").unwrap().to_string(), "1,3,5");
        assert_eq!(parse("2").unwrap().to_string(), "2");
    }

    #[test]
    fn refuses_what_taskset_would_not_take() {
        for bad in ["", "a", "1-", "-1", "3-1", "1,,2", "0x1", "99999"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn overlap() {
        assert!(parse("0-2").unwrap().overlaps(&parse("2,5").unwrap()));
        assert!(!parse("0-1").unwrap().overlaps(&parse("2-3").unwrap()));
    }
}
