//! Prices of SPEC.md §8 as pure functions: tokens to micros, rounded up
//! once on the total, computed in 128 bits so no intermediate overflows,
//! failing closed (no price is SG040, never 0).

use crate::error::{Error, Result};
use crate::validate;

/// A price row: micros per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    pub input: i64,
    pub output: i64,
    /// The rate of cached input tokens; the input rate when not set.
    pub cached_input: Option<i64>,
}

/// Token counts of one call: `cached_input` is part of `input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
}

impl Tokens {
    /// Token arguments: each required and >= 0 (22004 / 22023), cached at
    /// most the input (22023).
    pub fn new(
        input: Option<i64>,
        output: Option<i64>,
        cached_input: Option<i64>,
    ) -> Result<Tokens> {
        let t = Tokens {
            input: validate::amount("input_tokens", input)?,
            output: validate::amount("output_tokens", output)?,
            cached_input: validate::amount("cached_input_tokens", cached_input)?,
        };
        if t.cached_input > t.input {
            return Err(Error::InvalidParameter(format!(
                "cached_input_tokens ({}) must not exceed input_tokens ({}): cached tokens are part of the input",
                t.cached_input, t.input
            )));
        }
        Ok(t)
    }
}

/// `ceil(((input − cached) × input_rate + cached × cached_rate + output ×
/// output_rate) / 1,000,000)`: rounded up once, on the total. 22003 when
/// the cost is beyond bigint.
pub fn cost(r: Rates, t: Tokens) -> Result<i64> {
    let cached_rate = r.cached_input.unwrap_or(r.input);
    let total: i128 = i128::from(t.input - t.cached_input) * i128::from(r.input)
        + i128::from(t.cached_input) * i128::from(cached_rate)
        + i128::from(t.output) * i128::from(r.output);
    // every term is >= 0 and below 2^126, so the sum and the ceiling fit
    let micros = (total + 999_999) / 1_000_000;
    i64::try_from(micros).map_err(|_| {
        Error::OutOfRange(format!(
            "the cost of {} input and {} output tokens is beyond bigint",
            t.input, t.output
        ))
    })
}

/// SG040 for a model with no price in force at a time.
pub fn no_price(model: &str, at: &str) -> Error {
    Error::NoPrice(format!(
        "no price of model \"{model}\" is in force at {at}: set one with spendguard.price_set"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: i64, o: i64, c: i64) -> Tokens {
        Tokens::new(Some(i), Some(o), Some(c)).unwrap()
    }
    const R: Rates = Rates {
        input: 2_500_000,
        output: 10_000_000,
        cached_input: Some(1_250_000),
    };

    #[test]
    fn rounds_up_once_on_the_total() {
        assert_eq!(cost(R, t(0, 0, 0)), Ok(0));
        // 1 input token at 2.5 micros per token: 2.5 -> 3
        assert_eq!(cost(R, t(1, 0, 0)), Ok(3));
        // 2 tokens: exactly 5
        assert_eq!(cost(R, t(2, 0, 0)), Ok(5));
        // 1 cached (1.25) + 1 input (2.5) = 3.75 -> 4, not 2 + 3 = 5
        assert_eq!(cost(R, t(2, 0, 1)), Ok(4));
        // a rate of 1 micro per million tokens: 1 token costs 1 micro (up)
        let one = Rates {
            input: 1,
            output: 1,
            cached_input: None,
        };
        assert_eq!(cost(one, t(1, 0, 0)), Ok(1));
        assert_eq!(cost(one, t(1_000_000, 0, 0)), Ok(1));
        assert_eq!(cost(one, t(1_000_001, 0, 0)), Ok(2));
        // no cached rate: the input rate
        assert_eq!(cost(one, t(2_000_000, 0, 2_000_000)), Ok(2));
        assert_eq!(cost(R, t(1_000_000, 1_000_000, 0)), Ok(12_500_000));
    }

    #[test]
    fn no_overflow_inside_and_22003_beyond_bigint() {
        let max = Rates {
            input: i64::MAX,
            output: i64::MAX,
            cached_input: None,
        };
        assert_eq!(
            cost(max, t(i64::MAX, i64::MAX, 0)).unwrap_err().sqlstate(),
            "22003"
        );
        // the largest input that still fits: i64::MAX micros exactly
        let r = Rates {
            input: 1_000_000,
            output: 0,
            cached_input: None,
        };
        assert_eq!(cost(r, t(i64::MAX, 0, 0)), Ok(i64::MAX));
    }

    #[test]
    fn bad_tokens() {
        assert_eq!(
            Tokens::new(Some(1), Some(0), Some(2))
                .unwrap_err()
                .sqlstate(),
            "22023"
        );
        assert_eq!(
            Tokens::new(Some(-1), Some(0), Some(0))
                .unwrap_err()
                .sqlstate(),
            "22023"
        );
        assert_eq!(
            Tokens::new(None, Some(0), Some(0)).unwrap_err().sqlstate(),
            "22004"
        );
        assert_eq!(no_price("m", "x").sqlstate(), "SG040");
    }
}
