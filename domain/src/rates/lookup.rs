//! Number to rate lookup (see issue 5).
