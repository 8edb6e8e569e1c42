//! Placeholder: replaced by the markup parser.
