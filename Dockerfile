# The Bosun operator image. Build: docker build -t bosun:0.1.0 .   (hack/kind builds and loads it)
# Two stages: the first builds the wheel; the final one holds Python, Bosun and its dependencies,
# no compilers, no pip, and runs as a non-root user (the chart adds a read-only root filesystem).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels bosun \
 && rm -rf /wheels \
 && python -m pip uninstall -y pip setuptools wheel \
 && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bosun
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["bosun"]
CMD ["run"]
