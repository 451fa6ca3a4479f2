"""What ships beside the package: collector-config/, docker-compose.yml and dashboards/."""
