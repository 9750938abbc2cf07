//! The NPI check digit (billing-rules §9).

/// An NPI is 10 digits whose last digit is the Luhn check digit of the first nine with the
/// card-issuer prefix 80840 in front (equivalently: add 24 to the Luhn sum).
pub fn is_valid_npi(npi: &str) -> bool {
    let bytes = npi.as_bytes();
    if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Contribution of the constant prefix 80840 to the Luhn sum.
    const PREFIX_SUM: u32 = 24;
    let mut sum = PREFIX_SUM;
    for (position, byte) in bytes[..9].iter().enumerate() {
        let digit = u32::from(byte - b'0');
        // Counting from the right of the payload, every other digit (the 9th, 7th, ... from
        // the left, i.e. even positions) is doubled.
        sum += if position % 2 == 0 {
            let doubled = digit * 2;
            if doubled > 9 { doubled - 9 } else { doubled }
        } else {
            digit
        };
    }
    let check = (10 - sum % 10) % 10;
    u32::from(bytes[9] - b'0') == check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit_vectors() {
        // billing-rules §9 test vectors (computed and cross-checked there).
        let cases = [
            ("1234567893", true),
            ("1558598797", true),
            ("1234567890", false),
            ("123456789", false),
            ("12345678931", false),
            ("12345678a3", false),
            ("", false),
        ];
        for (npi, valid) in cases {
            assert_eq!(is_valid_npi(npi), valid, "{npi}");
        }
    }
}
