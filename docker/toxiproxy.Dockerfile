# toxiproxy-server built from the version of github.com/Shopify/toxiproxy/v2
# pinned in go.mod (the code fallacies embeds). /fallacies is there only for
# the health check (`fallacies health --http`): a scratch image has no curl.
# docker-compose.yml mounts docker/toxiproxy.json (every proxy) at /toxiproxy.json.
# To use the official image instead (where a registry is reachable), see
# docker-compose.yml.
FROM scratch
LABEL org.fallacies.image="toxiproxy"
COPY bin/toxiproxy-server /toxiproxy-server
COPY bin/fallacies /fallacies
USER 65532:65532
EXPOSE 8474
ENTRYPOINT ["/toxiproxy-server"]
CMD ["-host", "0.0.0.0", "-port", "8474", "-config", "/toxiproxy.json"]
