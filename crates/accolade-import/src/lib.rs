//! Import from Open edX Credentials: read its badges tables and plan what Accolade creates.
