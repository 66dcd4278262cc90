//! The statistics of repeated runs: the median and the spread (min-max), and
//! how the tables print numbers.

/// The median and the extremes of some runs' figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The middle value; the mean of the two middle ones for an even count.
    pub median: f64,
    /// The lowest value.
    pub min: f64,
    /// The highest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `xs`, or `None` when there is none (no value, or a NaN).
    pub fn of(xs: &[f64]) -> Option<Spread> {
        if xs.is_empty() || xs.iter().any(|x| x.is_nan()) {
            return None;
        }
        let mut sorted = xs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Spread { median, min: sorted[0], max: sorted[n - 1] })
    }

    /// `median (min–max)`, each number as `fmt` prints it; the median alone
    /// when all runs agree (or there was one run).
    pub fn show(&self, fmt: impl Fn(f64) -> String) -> String {
        let (median, min, max) = (fmt(self.median), fmt(self.min), fmt(self.max));
        if min == max {
            median
        } else {
            format!("{median} ({min}–{max})")
        }
    }
}

/// The median of `xs` (see [`Spread::of`]).
pub fn median(xs: &[f64]) -> Option<f64> {
    Spread::of(xs).map(|s| s.median)
}

/// A whole number with thousands separators: `70104.3` is `70,104`.
pub fn thousands(x: f64) -> String {
    let rounded = x.round();
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A latency in milliseconds with three significant digits, at most three
/// decimals: `0.339`, `2.57`, `18.3`, `54`.
pub fn ms(x: f64) -> String {
    let decimals = match x.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    format!("{x:.decimals$}")
}

/// A ratio as the tables show it: `6.86x`, or `-` when it has no meaning.
pub fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 && ours.is_finite() {
        format!("{:.2}x", ours / theirs)
    } else {
        "-".to_owned()
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_one() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).expect("spread");
        assert_eq!(s, Spread { median: 2.0, min: 1.0, max: 3.0 });
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
    }

    #[test]
    fn no_value_or_a_nan_has_no_spread() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn a_spread_shows_its_extremes_only_when_they_differ() {
        let s = Spread::of(&[2540.2, 2400.0, 2611.9]).expect("spread");
        assert_eq!(s.show(thousands), "2,540 (2,400–2,612)");
        let one = Spread::of(&[0.339]).expect("spread");
        assert_eq!(one.show(ms), "0.339");
    }

    #[test]
    fn numbers_print_as_the_tables_want_them() {
        assert_eq!(thousands(70104.28), "70,104");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(
            (ms(0.3391), ms(2.5689), ms(18.27), ms(154.4)),
            ("0.339".into(), "2.57".into(), "18.3".into(), "154".into())
        );
        assert_eq!(ratio(53396.0, 7787.0), "6.86x");
        assert_eq!(ratio(1.0, 0.0), "-");
        assert_eq!(mib(5222), 5.1);
    }
}
