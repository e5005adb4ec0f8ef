mod guest;
mod support;
