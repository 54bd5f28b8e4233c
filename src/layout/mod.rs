//! disko-compatible layouts (DESIGN §5). In progress.
