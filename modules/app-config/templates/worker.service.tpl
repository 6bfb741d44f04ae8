[Unit]
Description=${name} (${env}, worker ${index})

[Service]
ExecStart=/usr/local/bin/worker --index ${index}
Restart=on-failure
