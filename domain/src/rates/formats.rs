//! Deck file formats (see issue 5).
