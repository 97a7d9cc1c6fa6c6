FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin switchyard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard
COPY --from=build /src/clients/web/dist /usr/share/switchyard/web
ENV SWITCHYARD_SERVER_BIND=0.0.0.0:8080 SWITCHYARD_SERVER_DATA_DIR=/data \
    SWITCHYARD_SERVER_WEB_DIR=/usr/share/switchyard/web
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["switchyard"]
CMD ["serve"]
