"""Reading traffic: pcap and pcapng files and streams, live capture, and the layers below the
industrial protocols (Ethernet, VLAN, IP, TCP, UDP), decoded a batch of packets at a time."""
