//! Tests of the deck formats against fixture files and generated rows.
