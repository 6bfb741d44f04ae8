"""The quickstart's web app: counts visits in PostgreSQL and Redis and
announces each one on the message queue. GET /health checks all three."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pika
import psycopg2
import redis

DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_HOST = os.environ.get("REDIS_HOST", "redis")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@queue:5672/%2F")
GREETING = os.environ.get("GREETING", "hello")


def visit():
    with psycopg2.connect(DATABASE_URL) as db, db.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
        cur.execute("INSERT INTO visits DEFAULT VALUES RETURNING id")
        visits = cur.fetchone()[0]
    hits = redis.Redis(host=REDIS_HOST).incr("hits")
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.queue_declare(queue="visits", durable=True)
        channel.basic_publish(exchange="", routing_key="visits", body=json.dumps({"visit": visits}))
    finally:
        connection.close()
    return {"greeting": GREETING, "visits": visits, "hits": hits}


def health():
    with psycopg2.connect(DATABASE_URL) as db, db.cursor() as cur:
        cur.execute("SELECT 1")
    redis.Redis(host=REDIS_HOST).ping()
    pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    return {"status": "ok"}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body, status = (health() if self.path == "/health" else visit()), 200
        except Exception as error:  # report, do not crash the server
            body, status = {"error": str(error)}, 503
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
