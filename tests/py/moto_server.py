# A moto server (AWS emulator) for tests and benchmarks: it binds a free
# loopback port (no race for a "free" port), prints the port, and exits
# when its stdin closes, so it goes away with the process that started it
# however that process ends.
import os, sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdout = open(os.devnull, "w")
sys.stdin.read()
os._exit(0)
