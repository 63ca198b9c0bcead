"""kanal.v1: generated from the .proto files beside this file. Do not edit."""
