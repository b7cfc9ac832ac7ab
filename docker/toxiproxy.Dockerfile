# The Toxiproxy of the compose topology: `fallacies serve toxiproxy`, the
# Toxiproxy server of github.com/Shopify/toxiproxy/v2 at the version pinned
# in go.mod, embedded as a library (faults/toxiproxy), with its HTTP API
# behind internal/httpguard: a cross-site request or a foreign Host name is
# refused with 403 (upstream's toxiproxy-server would answer it).
# docker-compose.yml mounts docker/toxiproxy.json (every proxy) at
# /toxiproxy.json. /fallacies also runs the health check
# (`fallacies health --http`): a scratch image has no curl.
FROM scratch
LABEL org.fallacies.image="toxiproxy"
COPY bin/fallacies /fallacies
USER 65532:65532
EXPOSE 8474
ENTRYPOINT ["/fallacies", "serve", "toxiproxy"]
CMD ["--listen", "0.0.0.0:8474", "--config", "/toxiproxy.json", "--http-hosts", "toxiproxy"]
