//! Line numbers against a naive count over files mixing LF and CRLF, blank and whitespace
//! lines, bad rows and quoted line breaks; and the reader on arbitrary bytes.

use proptest::prelude::*;

use super::*;

const HEADER: &str = "Description,Price / min,Destination Prefixes";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Good,
    Bad,
    Blank,
    Spaces,
    TwoLines,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Good),
        Just(Kind::Bad),
        Just(Kind::Blank),
        Just(Kind::Spaces),
        Just(Kind::TwoLines)
    ]
}

/// The file, and the starting line of every row the reader must yield, in order.
fn build(kinds: &[(Kind, bool)], final_break: bool) -> (String, Vec<u64>) {
    let mut file = String::from(HEADER);
    let mut line = 1;
    let mut starts = Vec::new();
    for (i, (kind, crlf)) in kinds.iter().enumerate() {
        let end = if *crlf { "\r\n" } else { "\n" };
        file.push_str(end);
        line += 1;
        let prefix = 1_000 + i;
        match kind {
            Kind::Good => file.push_str(&format!("d,0.01,{prefix}")),
            Kind::Bad => file.push_str(&format!("d,bad,{prefix}")),
            Kind::Blank => {}
            Kind::Spaces => file.push_str("  "),
            Kind::TwoLines => file.push_str(&format!("\"a{end}b\",0.01,{prefix}")),
        }
        if !matches!(kind, Kind::Blank | Kind::Spaces) {
            starts.push(line);
        }
        if matches!(kind, Kind::TwoLines) {
            line += 1;
        }
    }
    if final_break {
        file.push('\n');
    }
    (file, starts)
}

fn line_of(item: &Result<DeckRow, RowError>) -> u64 {
    match item {
        Ok(row) => row.line,
        Err(error) => error.line,
    }
}

proptest! {
    #[test]
    fn every_row_reports_the_line_it_starts_on(
        kinds in prop::collection::vec((kind(), any::<bool>()), 0..40),
        final_break in any::<bool>(),
    ) {
        let (file, starts) = build(&kinds, final_break);
        let reader = DeckReader::new(file.as_bytes(), ReadOptions::new(USD))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let lines: Vec<u64> = reader.map(|item| line_of(&item)).collect();
        prop_assert_eq!(lines, starts);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_lines_never_go_back(
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut file = b"ISO,Price / min,Origination Prefixes,Destination Prefixes\n".to_vec();
        file.extend_from_slice(&body);
        let reader = DeckReader::new(&file[..], ReadOptions::new(USD))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut last = 1;
        for item in reader {
            let line = line_of(&item);
            prop_assert!(line > last, "line {} after {}", line, last);
            last = line;
        }
    }
}
