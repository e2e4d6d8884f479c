"""The labelling project: real images, region requests out to annotation tools, labels back in."""
