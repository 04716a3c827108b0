//! E.164 numbers (built by the lookup work; see issue 5).
