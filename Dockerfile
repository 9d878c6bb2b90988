# loanwatch worker / simulator image. Built by docker-compose.yml (services worker-1, worker-2,
# simulator); the same `loanwatch` command as on a developer machine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOANWATCH_ROOT=/srv/loanwatch

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin loanwatch
WORKDIR /srv/loanwatch

# Dependencies first (cached layer), then the package itself.
COPY pyproject.toml README.md ./
COPY loanwatch ./loanwatch
RUN pip install . && mkdir -p run && chown -R loanwatch:loanwatch run
COPY config ./config

USER loanwatch
ENTRYPOINT ["loanwatch"]
CMD ["worker"]
