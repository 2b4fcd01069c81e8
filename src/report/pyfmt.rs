//! Python's ways of printing numbers, so console lines, JSON and file names match vLLM's.

/// `repr(float)` / `str(float)` in Python: shortest round-trip digits, at least one decimal,
/// scientific notation outside [1e-4, 1e16) with a signed two-digit exponent.
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust: "1.5e-7" / "1e16"; Python: "1.5e-07" / "1e+16".
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("{:e} always has an exponent");
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// How vLLM names a percentile: `99` for 99.0, `99.9` for 99.9.
pub fn percentile_word(p: f64) -> String {
    if p.fract() == 0.0 && p.abs() < 1e15 {
        format!("{}", p as i64)
    } else {
        py_float(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_repr() {
        for (v, s) in [
            (1.0, "1.0"),
            (10.0, "10.0"),
            (0.5, "0.5"),
            (99.9, "99.9"),
            (f64::INFINITY, "inf"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1234.5678, "1234.5678"),
            (1e15, "1000000000000000.0"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(py_float(v), s, "{v}");
        }
    }

    #[test]
    fn percentile_words() {
        assert_eq!(percentile_word(99.0), "99");
        assert_eq!(percentile_word(99.9), "99.9");
        assert_eq!(percentile_word(50.0), "50");
    }
}
