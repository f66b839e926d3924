# Build: the Rust toolchain image; protoc comes from the protoc-bin-vendored crate.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tarn

# Run: a slim Debian with just the binary.
FROM debian:bookworm-slim
RUN useradd --system --home /data tarn && mkdir -p /data && chown tarn /data
COPY --from=build /src/target/release/tarn /usr/local/bin/tarn
USER tarn
VOLUME /data
EXPOSE 5433
ENV RUST_LOG=info
CMD ["tarn", "serve", "--data-dir", "/data", "--listen", "0.0.0.0:5433"]
