# nats-server built from the version of github.com/nats-io/nats-server/v2
# pinned in go.mod. /fallacies is there only for the health check
# (`fallacies health --http .../healthz`): a scratch image has no curl.
FROM scratch
LABEL org.fallacies.image="nats"
COPY bin/nats-server /nats-server
COPY bin/fallacies /fallacies
USER 65532:65532
EXPOSE 4222 8222
ENTRYPOINT ["/nats-server"]
CMD ["-js", "-sd", "/data", "-m", "8222"]
