//! Shamir secret sharing as sops splits data keys across key groups (sops shamir/shamir.go,
//! from HashiCorp Vault): GF(2^8) with the AES (Rijndael) polynomial x^8 + x^4 + x^3 + x + 1
//! (0x11b), one polynomial per secret byte, each share the y values followed by its x
//! coordinate (one byte, 1…255); the secret is the Lagrange interpolation at x = 0.

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, without secret-dependent branches.
fn mul(a: u8, b: u8) -> u8 {
    let mut acc: u8 = 0;
    for i in (0..8).rev() {
        let bit = (b >> i) & 1;
        let reduce = (acc >> 7).wrapping_neg() & 0x1b;
        acc = (acc << 1) ^ reduce ^ (bit.wrapping_neg() & a);
    }
    acc
}

/// Inverse by Fermat: a^254 (0 for 0).
fn inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// Recover the secret from shares `y… ‖ x` (sops `Combine`): at least two shares of equal
/// length (≥ 2 bytes) with distinct x coordinates. With fewer shares than the split's
/// threshold the result is a wrong key, which the caller's AEAD and MAC checks reject.
pub fn combine(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    if parts.len() < 2 {
        return Err("fewer than two Shamir shares".into());
    }
    let len = parts[0].len();
    if len < 2 {
        return Err("Shamir shares must be at least two bytes".into());
    }
    if parts.iter().any(|p| p.len() != len) {
        return Err("Shamir shares of different lengths".into());
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err("duplicate or zero Shamir share coordinate".into());
        }
    }
    let mut secret = vec![0u8; len - 1];
    for (idx, out) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, part) in parts.iter().enumerate() {
            let mut basis = 1u8;
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    // (0 - x_j) / (x_i - x_j); subtraction is XOR.
                    basis = mul(basis, mul(*xj, inv(xs[i] ^ xj)));
                }
            }
            acc ^= mul(part[idx], basis);
        }
        *out = acc;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluate a polynomial (coefficients low to high) at x, by Horner.
    fn eval(coeffs: &[u8], x: u8) -> u8 {
        coeffs.iter().rev().fold(0, |acc, c| mul(acc, x) ^ c)
    }

    fn split(secret: &[u8], n: u8, k: usize, seed: u8) -> Vec<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = (1..=n).map(|_| Vec::new()).collect();
        for (b, s) in secret.iter().enumerate() {
            let mut coeffs = vec![*s];
            for c in 1..k {
                coeffs.push(seed.wrapping_mul(31).wrapping_add((b * 7 + c * 13) as u8));
            }
            for x in 1..=n {
                parts[x as usize - 1].push(eval(&coeffs, x));
            }
        }
        for (i, p) in parts.iter_mut().enumerate() {
            p.push(i as u8 + 1);
        }
        parts
    }

    #[test]
    fn field_facts() {
        // The AES field (FIPS-197 §4.2): 0x57 · 0x83 = 0xC1, and 0x53, 0xCA are inverses.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        // sops shamir_test.go TestField_Mult.
        assert_eq!(mul(3, 7), 9);
        assert_eq!(mul(0x53, 0xca), 0x01);
        assert_eq!(inv(0x53), 0xca);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn combine_recovers_any_threshold_subset() {
        let secret: Vec<u8> = (0..32).map(|i| (i * 37 + 5) as u8).collect();
        let parts = split(&secret, 5, 3, 9);
        assert_eq!(combine(&parts[..3]).unwrap(), secret);
        assert_eq!(
            combine(&[parts[4].clone(), parts[1].clone(), parts[3].clone()]).unwrap(),
            secret
        );
        assert_eq!(combine(&parts).unwrap(), secret);
        assert_ne!(combine(&parts[..2]).unwrap(), secret);
        assert!(combine(&parts[..1]).is_err());
        assert!(combine(&[parts[0].clone(), parts[0].clone()]).is_err());
    }
}
