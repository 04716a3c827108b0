//! G.711 µ-law and A-law encoding and decoding (ITU-T G.711), and the tones the gateway
//! generates: the `dial` source tone and the final-unit warning. Samples are 8 kHz i16.

use crate::sip::sdp::Codec;

pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = i32::from(sample) >> 3; // 13-bit
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    let byte = if s < 32 {
        (s >> 1) as u8
    } else {
        let mut exponent = 1;
        while exponent < 7 && s >= (64 << (exponent - 1)) {
            exponent += 1;
        }
        ((exponent << 4) as u8) | ((s >> exponent) & 0x0f) as u8
    };
    (byte | sign) ^ 0x55
}

pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

pub fn encode(codec: Codec, samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(samples.iter().map(|&s| match codec {
        Codec::Pcmu => linear_to_ulaw(s),
        Codec::Pcma => linear_to_alaw(s),
    }));
}

/// A sine tone generator (8 kHz); keeps its phase across frames.
#[derive(Debug, Clone)]
pub struct Tone {
    step: f32,
    phase: f32,
    amplitude: f32,
}

impl Tone {
    pub fn new(frequency_hz: f32, amplitude: i16) -> Tone {
        Tone {
            step: std::f32::consts::TAU * frequency_hz / 8000.0,
            phase: 0.0,
            amplitude: f32::from(amplitude),
        }
    }

    /// The next 20 ms (160 samples).
    pub fn frame(&mut self) -> [i16; 160] {
        let mut out = [0i16; 160];
        for s in out.iter_mut() {
            *s = (self.phase.sin() * self.amplitude) as i16;
            self.phase = (self.phase + self.step) % std::f32::consts::TAU;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_laws_round_trip_within_their_quantisation() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            let tol = (i32::from(s).abs() / 16).max(16);
            assert!((i32::from(u) - i32::from(s)).abs() <= tol, "µ-law {s} -> {u}");
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tol.max(32),
                "A-law {s} -> {a}"
            );
        }
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
    }

    #[test]
    fn a_tone_frame_is_20_ms_of_signal() {
        let mut t = Tone::new(1000.0, 8000);
        let f = t.frame();
        assert!(f.iter().any(|&s| s > 7000) && f.iter().any(|&s| s < -7000));
    }
}
