"""The WeCom edge for what people type into WeCom: the callback URL and the command router."""
