mod net;
mod support;
