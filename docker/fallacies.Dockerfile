# The image of every service of the system under test: one static binary,
# `fallacies serve <service> ...`, in an empty image. Built by `make images`
# from build/docker (no registry is needed: FROM scratch pulls nothing).
FROM scratch
LABEL org.fallacies.image="fallacies"
COPY bin/fallacies /fallacies
USER 65532:65532
ENTRYPOINT ["/fallacies"]
CMD ["--help"]
