//! A speed check on a generated 500,000-row Twilio deck, run by hand in release mode:
//! `cargo test --release -p ringledger-domain five_hundred_thousand -- --ignored --nocapture`.

use std::time::Instant;

use super::*;

fn generated_deck(rows: usize) -> Vec<u8> {
    let mut file =
        b"ISO,Country,Description,Price / min,Origination Prefixes,Destination Prefixes\n".to_vec();
    for i in 0..rows {
        let line = format!(
            "US,United States,Generated {i},0.{:04},,\"1{i:07}, 2{i:07}\"\n",
            i % 10_000
        );
        file.extend_from_slice(line.as_bytes());
    }
    file
}

#[test]
#[ignore = "speed check; run by hand in release mode"]
fn five_hundred_thousand_rows_read_in_bounded_time() {
    let file = generated_deck(500_000);
    let started = Instant::now();
    let reader = DeckReader::new(&file[..], ReadOptions::new(USD)).unwrap();
    let (mut good, mut bad) = (0u64, 0u64);
    for item in reader {
        match item {
            Ok(_) => good += 1,
            Err(_) => bad += 1,
        }
    }
    let elapsed = started.elapsed();
    println!("{} bytes, {good} rows, {bad} errors in {elapsed:?}", file.len());
    assert_eq!((good, bad), (500_000, 0));
}
